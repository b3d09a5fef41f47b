"""Frozen integer tables from a compressai EntropyBottleneck (the factorized density of a latent)."""

from __future__ import annotations

import torch

from mcodec.entropy import TableSet

MAX_SIDE = 2048


def factorized_tables(eb) -> TableSet:
    """Per-channel tables from a compressai EntropyBottleneck, evaluated in float64 on the integer grid
    around each channel's median, between its learned tail quantiles; the tail mass goes to the escape."""
    eb = eb.double()
    q = eb.quantiles.detach()[:, 0, :]  # [C, 3]: lower tail, median, upper tail
    medians = q[:, 1]
    # supports beyond MAX_SIDE symbols would only hold tail mass: those symbols take the escape
    minima = torch.ceil(medians - q[:, 0]).clamp(0, MAX_SIDE).long()
    maxima = torch.ceil(q[:, 2] - medians).clamp(0, MAX_SIDE).long()
    pmfs, offsets, tails = [], [], []
    with torch.no_grad():
        for c in range(q.shape[0]):
            k = torch.arange(-int(minima[c]), int(maxima[c]) + 1, dtype=torch.float64)
            samples = (k + medians[c]).view(1, 1, -1).expand(q.shape[0], 1, -1)
            pmf, _, _ = eb._likelihood(samples, stop_gradient=True)
            pmf = pmf[c, 0]
            pmfs.append(pmf.numpy())
            offsets.append(-int(minima[c]))
            tails.append(max(1.0 - float(pmf.sum()), 0.0))
    eb.float()
    return TableSet.from_pmfs(pmfs, offsets, tails)
