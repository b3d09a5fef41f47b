"""Training the RVQ audio autoencoder: random 1 s crops of a folder of audio (resampled to 24 kHz mono),
drawn evenly from its subfolders (say music/, speech/), whatever their number of files,
loss = L1 on the waveform + multi-scale log-mel L1 + the RVQ commitment loss - sisdr_weight * SI-SDR/10,
with a random number of RVQ stages per batch (quantizer dropout) so one model serves every bitrate. The
mel loss carries the spectrum; the SI-SDR term the phase (without it the first GPU run learned noise with
the right spectrum). Checkpoints every ``ckpt_every`` steps; a run resumes from run_dir/checkpoint.pt.

``adversarial`` (``--adversarial``) adds multi-scale STFT and multi-period discriminators
(``discriminators.py``, ``adversarial.py``) with their own Adam: the generator's loss gains
adv_weight * adversarial + feat_weight * feature matching from step ``adv_start`` on (the discriminators
learn from the first step, so they are not random when their gradient reaches a fine-tuned model). The
shipped models were trained without: at a budget of GPU-minutes it had not paid for itself (audio notes).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import torch
import torch.nn.functional as F
import torchaudio

from mcodec.codec.audio.codec import HIGH_PASS
from mcodec.codec.audio.model import HOP, SAMPLE_RATE, RVQAutoencoder
from mcodec.codec.audio.si_sdr import si_sdr_db
from mcodec.codec.audio.stream import HighPass
from mcodec.codec.base import CodecError
from mcodec.codec.media_io import MediaError, read_audio
from mcodec.codec.model_file import Weights

from . import distributed
from .adversarial import Adversary
from .discriminators import Discriminators
from .loop import train_loop

# .g722: raw G.722 at 16 kHz (asterisk prompts), which PyAV reads by extension
AUDIO_SUFFIXES = {".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac", ".g722"}
# Windows down to 64 samples (2.7 ms) and an SI-SDR weight of 1 rather than 3 (rvq-v1's 512-2048 and 3):
# rvq-v1 reconstructs speech 6-17 dB too quiet above 1 kHz (PESQ-WB 1.60 before quantization). 820 CPU
# steps of fine-tuning with these settings gave 2-4 kHz -2.4 dB instead of -6.3, 4-8 kHz -8.2 instead of
# -17.1, and PESQ-WB 1.65 on held-out speech (8-12 kHz noise rose: +13 dB instead of +6.5).
MEL_WINDOWS = (64, 128, 256, 512, 1024, 2048)
# Generator weights of the adversarial and feature-matching terms beside a mel loss of weight 1 (a sum
# over 6 windows). DAC weighs mel 15 (a sum over 7 windows), feature matching 2, adversarial 1: at our mel
# weight that is 0.067 and 0.133. Rounded up to 0.1 and 0.2, as EnCodec's relative, averaged feature
# matching is smaller than DAC's summed L1. Not tuned (no adversarial run yet): starting points that
# leave the reconstruction terms in charge of a fine-tune; --adv-weight and --feat-weight change them.
ADV_WEIGHT = 0.1
FEAT_WEIGHT = 0.2
# seconds of the corpus the exported priors are counted on (code_histograms): 2400 rather than 600 cost
# rvq-v10's codes of the held-back 52 0.04 bits less a code over 8 stages, less on every stage (0.14 on
# the first): less on the held-back voice's prompts and the syllables, 0.04 more on the 4 shared files
# (codec/models/rvq.md, session 45)
PRIOR_SECONDS = 2400.0


@dataclass
class AudioTrainConfig:
    steps: int = 20000
    batch: int = 16
    seconds: float = 1.0
    lr: float = 3e-4
    commit_weight: float = 1.0
    sisdr_weight: float = 1.0
    focus_stages: int | None = None  # draw this many RVQ stages for focus_share of the batches
    focus_share: float = 0.5
    speed: float = 0.0  # speed perturbation: each crop played at 1 +- up to this (random_batch)
    group_weights: tuple[tuple[str, float], ...] = ()  # (group, weight); unnamed groups weigh 1
    mel_windows: tuple[int, ...] = MEL_WINDOWS
    max_mels: int = 256
    ckpt_every: int = 200
    log_every: int = 20
    seed: int = 0
    max_seconds: float | None = None
    adversarial: bool = False
    adv_start: int = 0  # the step from which the generator's loss has the adversarial terms
    adv_weight: float = ADV_WEIGHT
    feat_weight: float = FEAT_WEIGHT
    adv_loss: str = "hinge"  # or "ls" (least squares)
    disc_lr: float | None = None  # the discriminators' rate (None: the generator's)
    context_lr_factor: float = 1.0  # the decoder's context units learn at this multiple of lr
    # train the decoder alone on the codes the codec's encoder picks (its default beam): the encoder,
    # codebooks and so the bitstream and the code priors stay the init model's
    decoder_only: bool = False


def training_signal(audio: torch.Tensor, rate: int) -> torch.Tensor:
    """A file's audio [C, N] at ``rate`` as the trainer sees it: mono (the channels' mean) at 24 kHz, [N],
    high-passed as the encoder does (HIGH_PASS), so the model learns on what it will be given to code."""
    mono = audio.mean(0)
    mono = mono if rate == SAMPLE_RATE else torchaudio.functional.resample(mono, rate, SAMPLE_RATE)
    return torch.from_numpy(HighPass(HIGH_PASS, SAMPLE_RATE).push(mono.numpy()))


def load_corpus(
    folder: Path, min_samples: int, skipped: list[Path] | None = None
) -> dict[str, dict[str, list[torch.Tensor]]]:
    """Every audio file under folder as 24 kHz mono float32 [N] (files shorter than a crop are padded),
    grouped by the top-level subfolder it lies in ("" for files directly in folder), and within it by the
    next level (a language or a voice: klettres/de/..., "" for files directly in the group). Files that
    cannot be read are appended to ``skipped``."""
    groups: dict[str, dict[str, list[torch.Tensor]]] = {}
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES):
        try:
            audio, rate = read_audio(path)
        except MediaError:
            if skipped is not None:
                skipped.append(path)
            continue
        mono = training_signal(audio, rate)
        if mono.abs().max() > 1e-4:  # skip silence
            parts = path.relative_to(folder).parts
            group, sub = parts[0] if len(parts) > 1 else "", parts[1] if len(parts) > 2 else ""
            clips = groups.setdefault(group, {}).setdefault(sub, [])
            clips.append(F.pad(mono, (0, max(0, min_samples - mono.numel()))))
    if not groups:
        raise CodecError(f"no readable audio in {folder}")
    return groups


def random_batch(
    groups: list[list[list[torch.Tensor]]],
    batch: int,
    samples: int,
    rng: random.Random,
    speed: float = 0.0,
    weights: list[float] | None = None,
) -> torch.Tensor:
    """[batch, 1, samples] crops with a random gain (-12..0 dB) so loudness does not matter. Each crop
    picks a group (subfolder) first, then a subgroup in it (a language or voice), then a clip: 155 short
    music samples must not drown 16 speech files and a few long synthesized ones (the first model heard
    speech in 15% of its crops), nor a language with 300 recordings one with 20. ``speed`` > 0 plays each
    crop at a random speed within 1 +- speed (speed_factor): pitch and tempo move together, as in speech
    recognition's speed perturbation, so a few voices sound like more. Clips must hold
    crop_source(samples, 1 + speed) samples. ``weights``: a group's share of the crops is its weight over
    the sum (None: even, the draws of runs before weights existed)."""
    out = []
    for _ in range(batch):
        pick = rng.randrange(len(groups)) if weights is None else rng.choices(range(len(groups)), weights)[0]
        subgroups = groups[pick]
        clips = subgroups[rng.randrange(len(subgroups))]
        clip = clips[rng.randrange(len(clips))]
        factor = speed_factor(speed, rng) if speed else Fraction(1)
        source = crop_source(samples, factor)
        start = rng.randrange(clip.numel() - source + 1)
        piece = clip[start : start + source]
        if factor != 1:  # ceil(source / factor) >= samples of them
            piece = torchaudio.functional.resample(piece, factor.numerator, factor.denominator)[:samples]
        peak = piece.abs().max().clamp_min(1e-4)
        out.append(piece / peak * 10 ** (-rng.uniform(0, 12) / 20))
    return torch.stack(out)[:, None]


# speed factors are drawn on a grid of 1/SPEED_STEPS, so that each resampling kernel is small (the
# ratio's reduced terms are at most SPEED_STEPS * (1 + speed))
SPEED_STEPS = 40


def speed_factor(speed: float, rng: random.Random) -> Fraction:
    """A speed within 1 +- speed, on the grid of 1/SPEED_STEPS (1 when speed is below one step)."""
    reach = int(speed * SPEED_STEPS)
    return Fraction(SPEED_STEPS + rng.randint(-reach, reach), SPEED_STEPS)


def crop_source(samples: int, factor: Fraction | float) -> int:
    """How many source samples a crop of ``samples`` played at ``factor`` x the speed takes."""
    return math.ceil(samples * factor)


def group_weights(names: list[str], given: tuple[tuple[str, float], ...]) -> list[float] | None:
    """Each group's weight in the order of ``names`` (1 where not given), or None when none is given.
    A name that is not a group, or weights that leave no group to draw, are refused (CodecError: the
    CLI's one-line error)."""
    if not given:
        return None
    unknown = sorted({name for name, _ in given} - set(names))
    if unknown:
        raise CodecError(f"no group {', '.join(unknown)} in the data (groups: {', '.join(names)})")
    weights = dict.fromkeys(names, 1.0) | dict(given)
    if not sum(weights.values()) > 0:
        raise CodecError("the group weights leave no group to draw from")
    return [weights[name] for name in names]


class MelLoss(torch.nn.Module):
    """L1 between log-mel spectrograms at several window sizes (as DAC's multi-scale mel loss), with
    n // 8 mel bands for an n-sample window (DAC's ratio), at most ``max_mels``."""

    def __init__(self, windows: tuple[int, ...] = MEL_WINDOWS, max_mels: int = 256):
        super().__init__()
        self.mels = torch.nn.ModuleList(
            torchaudio.transforms.MelSpectrogram(
                SAMPLE_RATE, n_fft=n, hop_length=n // 4, n_mels=min(max_mels, n // 8), power=1.0
            )
            for n in windows
        )

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return sum(
            F.l1_loss(torch.log(m(x).clamp_min(1e-5)), torch.log(m(y).clamp_min(1e-5))) for m in self.mels
        )


def _describe(name: str, subgroups: dict[str, list[torch.Tensor]]) -> str:
    """'klettres: 17 subgroups, 1654 clips, 48.7 min' for the training log."""
    clips = [c for cs in subgroups.values() for c in cs]
    minutes = sum(c.numel() for c in clips) / SAMPLE_RATE / 60
    subs = f"{len(subgroups)} subgroups, " if len(subgroups) > 1 else ""
    return f"{name or '.'}: {subs}{len(clips)} clips, {minutes:.1f} min"


class AudioTask:
    """One step: random crops, a random number of RVQ stages (quantizer dropout), the loss above; with an
    ``adversary`` its discriminators' step first, then the generator's."""

    def __init__(self, model: RVQAutoencoder, data: Path, cfg: AudioTrainConfig, opt, adversary=None):
        self.model, self.data, self.cfg, self.opt, self.adversary = model, data, cfg, opt, adversary
        self.frozen_beam = encoder_beam() if cfg.decoder_only else None

    def setup(self, d: distributed.Dist) -> str:
        self.d = d
        self.device = d.device
        self.samples = int(self.cfg.seconds * SAMPLE_RATE) // HOP * HOP
        skipped: list[Path] = []
        corpus = load_corpus(self.data, crop_source(self.samples, 1 + self.cfg.speed), skipped)
        self.groups = [list(subs.values()) for subs in corpus.values()]
        self.weights = group_weights(list(corpus), self.cfg.group_weights)
        self.mel_loss = MelLoss(self.cfg.mel_windows, self.cfg.max_mels).to(d.device)
        about = ", ".join(_describe(name, subs) for name, subs in corpus.items())
        if skipped:
            names = ", ".join(str(p.relative_to(self.data)) for p in skipped[:5])
            more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
            about += f"; skipped {len(skipped)} unreadable file(s): {names}{more}"
        if self.weights is None:
            return f"crops drawn evenly from {len(corpus)} group(s): {about}"
        total, pairs = sum(self.weights), zip(corpus, self.weights, strict=True)
        shares = ", ".join(f"{name or '.'} {w / total:.0%}" for name, w in pairs)
        return f"crops drawn from {len(corpus)} group(s) by weight ({shares}): {about}"

    def stages(self, rng: random.Random) -> int:
        """Quantizer dropout: 1..n_q stages uniformly, or (with focus_stages) that operating point for
        focus_share of the batches: a fine-tune toward the bitrate that matters most."""
        focus = self.cfg.focus_stages
        if focus is not None and rng.random() < self.cfg.focus_share:
            return focus
        return rng.randint(1, self.model.n_q)

    def step(self, net, rng: random.Random, step: int = 0) -> dict[str, float]:
        cfg = self.cfg
        x = random_batch(self.groups, cfg.batch, self.samples, rng, cfg.speed, self.weights).to(self.device)
        out = net(x, self.stages(rng), self.frozen_beam)
        l1, mel = F.l1_loss(out["audio_hat"], x), self.mel_loss(out["audio_hat"][:, 0], x[:, 0])
        # the mel loss is blind to phase, and the plain L1 on the waveform too weak a pull beside it:
        # without this term a model learned noise with the right spectrum (SI-SDR -45 dB, 7.8k GPU steps)
        sisdr = si_sdr_db(out["audio_hat"][:, 0], x[:, 0]).clamp(max=40).mean()
        loss = l1 + mel + cfg.commit_weight * out["commit"] - cfg.sisdr_weight * sisdr / 10
        adv_metrics = {}
        if self.adversary is not None:
            adv_metrics = self.adversary.update(x, out["audio_hat"], self.d)
            if step >= cfg.adv_start:
                adv, feat = self.adversary.generator_terms(x, out["audio_hat"])
                loss = loss + cfg.adv_weight * adv + cfg.feat_weight * feat
                adv_metrics.update(adv=adv.item(), feat=feat.item())
        self.opt.zero_grad()
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        # one inf or NaN gradient, clipped, would turn every weight into NaN: skip the step (as the image
        # task does; "skipped" in the log is the fraction of such steps; the discriminators skip theirs
        # alike, "d_skipped")
        finite = bool(torch.isfinite(norm))
        if finite:
            self.opt.step()
        metrics = {"loss": loss.item(), "si-sdr": sisdr.item(), "mel": mel.item()}
        return {**metrics, "skipped": float(not finite), **adv_metrics}


def init_state_from(w: Weights) -> dict[str, torch.Tensor]:
    """The state to start training from a model file (``--init``): its network and codebooks, as float32
    (the codebooks rebuild their EMA statistics on load: ``EMACodebook._load_from_state_dict``)."""
    return {
        k: v.float() if v.is_floating_point() else v
        for k, v in w.tensors.items()
        if not k.startswith("tables.")
    }


def train_audio(
    model: RVQAutoencoder,
    data: Path,
    run_dir: Path,
    cfg: AudioTrainConfig,
    device: str = "cpu",
    init_state: dict | None = None,
    log=None,
) -> bool:
    """Train until ``cfg.steps`` total steps (or ``cfg.max_seconds``), resuming from run_dir/checkpoint.pt;
    returns whether this is the main process (the one that should export), torchrun or not."""
    if cfg.decoder_only:
        for p in [*model.encoder.parameters(), *model.quantizer.parameters()]:
            p.requires_grad_(False)
    context = list(model.decoder.context.parameters())
    trained = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    rest = [p for name, p in trained if not name.startswith("decoder.context.")]
    groups = [{"params": rest}]
    if context:
        groups.append({"params": context, "lr_factor": cfg.context_lr_factor})
    opt = torch.optim.Adam(groups, lr=cfg.lr, betas=(0.5, 0.9))
    optimizers, modules, adversary = {"opt": opt}, {}, None
    if cfg.adversarial:
        disc = Discriminators()
        # EnCodec's and HiFi-GAN's discriminator optimizer: Adam, betas (0.5, 0.9), by default the
        # generator's rate; a fine-tune at a low rate gives fresh discriminators a faster one to catch up
        disc_lr = cfg.lr if cfg.disc_lr is None else cfg.disc_lr
        optimizers["disc_opt"] = torch.optim.Adam(disc.parameters(), lr=disc_lr, betas=(0.5, 0.9))
        modules["disc"] = disc
        adversary = Adversary(disc, optimizers["disc_opt"], cfg.adv_loss)
    task = AudioTask(model, data, cfg, opt, adversary)
    return train_loop(model, task, optimizers, run_dir, cfg, device, init_state, log, modules)


def encoder_beam() -> int:
    """The RVQ search's beam of the codec's default preset: the codes a file will carry."""
    from mcodec.codec.audio.codec import BEAM, INFO

    return BEAM[INFO.default_preset]


@torch.no_grad()
def code_histograms(
    model: RVQAutoencoder, data: Path, max_seconds: float = PRIOR_SECONDS, beam: int | None = None
) -> torch.Tensor:
    """Counts [n_q, codebook size] of each stage's codes as the codec's encoder picks them (its default
    preset's beam), over up to max_seconds of the corpus shared evenly between its groups and, within a
    group, its subfolders (voices, languages): the priors the exported tables are built from. Until session
    43 it took the first 600 s in path order (one voice: Allison's prompts) searched greedily; rvq-v10's
    tables, made so, cost held-back voices over 10 bits a code on stages 1 and 2, where the encoder falls
    back to the uniform table (codec/models/rvq.md)."""
    beam = encoder_beam() if beam is None else beam
    model.eval()
    counts = torch.zeros(model.n_q, model.quantizer.size, dtype=torch.float64)
    corpus = load_corpus(data, HOP)
    for subs in corpus.values():
        for clips in subs.values():
            budget = int(max_seconds * SAMPLE_RATE / len(corpus) / len(subs))
            for clip in clips:
                clip = clip[: min(budget, clip.numel()) // HOP * HOP]
                if clip.numel() < HOP:
                    break
                codes = model.encode(clip[None, None], model.n_q, beam)
                for k in range(model.n_q):
                    counts[k] += torch.bincount(codes[k].reshape(-1), minlength=model.quantizer.size).double()
                budget -= clip.numel()
    return counts
