"""Residual vector quantization (as in SoundStream and EnCodec) with EMA codebooks.

Each stage quantizes the residual the previous stages left, so the first k codebooks alone give a
coarser code: training with a random number of stages per batch (quantizer dropout) makes one model
serve every bitrate. Codebooks are learned by exponential moving averages of the vectors assigned to
each code (no gradient), initialized by k-means on the first batch; codes left unused for many steps are
restarted on random vectors of the batch.

Shapes: latents x [B, D, T]; codes [n_q, B, T] (int64, values < codebook size).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def squared_distances(x: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
    """x [N, D], embedding [K, D] -> [N, K] squared L2 distances, in one matrix product."""
    dist = torch.addmm(embedding.pow(2).sum(1)[None], x, embedding.t(), alpha=-2)
    return dist.add_(x.pow(2).sum(1, keepdim=True))


# A code is dead when its decayed hit count falls below this fraction of an evenly used code's. At batch
# 16 x 75 frames each of 1024 codes expects ~1.2 hits a step: a code unused since its last hit falls below
# 1% of that after ~450 steps (decay 0.99). The old rule (a count below 1 hit) restarted every code that
# missed one step, which at ~1.2 expected hits is most of the rarely used ones, all the time.
DEAD_FRACTION = 0.01


class EMACodebook(nn.Module):
    def __init__(self, dim: int, size: int = 1024, decay: float = 0.99, dead_fraction: float = DEAD_FRACTION):
        super().__init__()
        self.size, self.decay, self.dead_fraction = size, decay, dead_fraction
        self.register_buffer("embedding", torch.zeros(size, dim))
        self.register_buffer("ema_count", torch.ones(size))
        self.register_buffer("ema_sum", torch.zeros(size, dim))
        self.register_buffer("initialized", torch.tensor(False))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """x [N, D] -> nearest code [N] (squared L2)."""
        return squared_distances(x, self.embedding).argmin(1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return F.embedding(codes, self.embedding)

    @torch.no_grad()
    def _kmeans_init(self, x: torch.Tensor, iterations: int = 10) -> None:
        idx = torch.randint(0, x.shape[0], (self.size,), device=x.device)
        centers = x[idx].clone()
        for _ in range(iterations):
            assign = torch.cdist(x, centers).argmin(1)
            counts = torch.bincount(assign, minlength=self.size).float()
            sums = torch.zeros_like(centers).index_add_(0, assign, x)
            filled = counts > 0
            centers[filled] = sums[filled] / counts[filled, None]
        self.embedding.copy_(centers)
        self.ema_sum.copy_(centers)
        self.ema_count.fill_(1.0)
        self.initialized.fill_(True)

    @torch.no_grad()
    def _update(self, x: torch.Tensor, codes: torch.Tensor) -> None:
        counts = torch.bincount(codes, minlength=self.size).float()
        sums = torch.zeros_like(self.ema_sum).index_add_(0, codes, x)
        self.ema_count.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.ema_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        n = self.ema_count.sum()
        smoothed = (self.ema_count + 1e-5) / (n + self.size * 1e-5) * n  # Laplace smoothing
        self.embedding.copy_(self.ema_sum / smoothed[:, None])
        dead = self.ema_count < self.dead_fraction * x.shape[0] / self.size
        if dead.any():  # restart unused codes on random vectors of this batch
            picks = x[torch.randint(0, x.shape[0], (int(dead.sum()),), device=x.device)]
            self.embedding[dead] = picks
            self.ema_sum[dead] = picks
            self.ema_count[dead] = 1.0

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """A model file holds the codebook but not its EMA statistics (training state). Loaded as they
        were (count 1, sum 0) they made the first update set every used codeword to ~1% of its norm: a
        warm start (``--init``) wiped the codebooks. Without them, the statistics are rebuilt as k-means
        leaves them: a count of 1 and a sum equal to the codeword."""
        rebuild = f"{prefix}embedding" in state_dict and not any(
            f"{prefix}{k}" in state_dict for k in ("ema_sum", "ema_count")
        )
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        if rebuild:
            with torch.no_grad():
                self.ema_count.fill_(1.0)
                self.ema_sum.copy_(self.embedding)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [N, D] -> (nearest codewords [N, D], no gradient; codes [N]); training updates the codebook."""
        if self.training and not bool(self.initialized):
            self._kmeans_init(x.detach())
        codes = self.encode(x.detach())
        if self.training:
            self._update(x.detach(), codes)
        return self.decode(codes).detach(), codes


class ResidualVQ(nn.Module):
    def __init__(self, dim: int, n_q: int = 16, size: int = 1024):
        super().__init__()
        self.n_q, self.size = n_q, size
        self.codebooks = nn.ModuleList(EMACodebook(dim, size) for _ in range(n_q))

    def forward(self, x: torch.Tensor, n_q: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x [B, D, T] -> (quantized [B, D, T] with a straight-through gradient, codes [n_q, B, T],
        commitment loss: the mean squared distance of each stage's residual to its codeword)."""
        b, d, t = x.shape
        flat = x.permute(0, 2, 1).reshape(-1, d)
        total, codes, commit = torch.zeros_like(flat), [], flat.new_zeros(())
        for cb in self.codebooks[:n_q]:
            residual = flat - total  # total holds codewords only: no gradient flows through it
            q, c = cb(residual)
            commit = commit + F.mse_loss(residual, q)
            total = total + q
            codes.append(c)
        quantized = flat + (total - flat).detach()
        return quantized.reshape(b, t, d).permute(0, 2, 1), torch.stack(codes).reshape(n_q, b, t), commit

    @torch.no_grad()
    def encode(self, x: torch.Tensor, n_q: int, beam: int = 1) -> torch.Tensor:
        """x [B, D, T] -> codes [n_q, B, T]; never updates the codebooks. beam = 1 is the greedy search
        of training (each stage's nearest code); a wider beam keeps that many partial sums per vector
        and returns the codes of the one closest to x after n_q stages (see beam_search)."""
        b, d, t = x.shape
        flat = x.permute(0, 2, 1).reshape(-1, d)
        return beam_search(flat, [cb.embedding for cb in self.codebooks[:n_q]], beam).reshape(n_q, b, t)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [n_q, B, T] -> [B, D, T]."""
        out = sum(cb.decode(c) for cb, c in zip(self.codebooks, codes, strict=False))
        return out.permute(0, 2, 1)


def beam_search(
    x: torch.Tensor,
    codebooks: list[torch.Tensor],
    beam: int,
    bits: list[torch.Tensor] | None = None,
    lam: float = 0.0,
) -> torch.Tensor:
    """x [N, D], codebooks [K, D] each -> codes [n_q, N] whose codeword sum is nearer x (squared L2) than
    greedy RVQ's, by keeping the ``beam`` best partial sums per vector after every stage. Greedy choices
    that look best at stage k can leave residuals the later codebooks fit badly; on rvq-v2 a beam of 4
    cut the latent error after 8 stages by a fifth. Its first k stages stay a good k-stage code (the
    rate control drops finest stages): they were a surviving hypothesis at stage k. With ``bits`` (each
    stage's code lengths [K]) the search minimizes squared error + ``lam`` x bits instead: fewer bits for
    a little more error (the rate control's alternative to dropping a stage, codec.py)."""
    n, d = x.shape
    residual = x[:, None, :]  # [N, H, D]: what each hypothesis leaves (H = 1, then beam)
    spent = torch.zeros(n, 1, device=x.device)  # [N, H]: each hypothesis's bits so far
    parents, picks = [], []
    for k, emb in enumerate(codebooks):
        size = emb.shape[0]
        score = squared_distances(residual.reshape(-1, d), emb).reshape(n, -1)  # [N, H x K]
        if bits is not None:
            score = score + lam * (spent[:, :, None] + bits[k]).reshape(n, -1)
        _, best = score.topk(min(beam, score.shape[1]), dim=1, largest=False, sorted=True)
        parent, code = best // size, best % size
        residual = residual.gather(1, parent[..., None].expand(-1, -1, d)) - emb[code]
        if bits is not None:
            spent = spent.gather(1, parent) + bits[k][code]
        parents.append(parent)
        picks.append(code)
    h = torch.zeros(n, 1, dtype=torch.long, device=x.device)  # the best hypothesis (topk is sorted)
    codes = []
    for parent, code in zip(reversed(parents), reversed(picks), strict=True):
        codes.append(code.gather(1, h)[:, 0])
        h = parent.gather(1, h)
    return torch.stack(codes[::-1])
