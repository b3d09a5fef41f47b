"""A wider latent for a trained mean-scale model (``mcodec train image --init FILE --width N M``, M above
the file's), or a wider synthesis for a trained hyperprior (``--synthesis-width NS``, ``widen_synthesis``):
the same function, with room to grow.

The top qualities of meanscale-v8 are its transforms' ceiling, not its entropy model's: with the gains
extrapolated past quality 8 (finer and finer quantization) the reconstruction stops improving at 35.4 dB
on a held-back photo (lomiri_aitzgorri; 35.0 dB at q8) and at 26.4 dB on baboon (26.3 at q8), where
JPEG keeps climbing. M = 128 latents at 1/16 of the side are half a value per pixel; compressai's own
models use M = 192 for their lower qualities and 320 for the top ones (see the issue on capacity).

Every tensor that depends on M keeps the file's values in its first channels, and the new channels start
so that the model computes exactly what the file's does:
- the analysis's new output channels have zero weights and bias: the new latents are 0 and round to 0;
- the synthesis's weights from the new latents keep their fresh (random) values: a rounded 0 adds
  nothing, yet the straight-through gradient reaches the new analysis channels through them;
- the hyper-analysis takes the new latents with zero weights; the hyper-synthesis's new hidden units
  start fresh with zero weights out of them, and its new outputs (scales and means of the new latents)
  are 0: means 0, scales at the Gaussian model's lower bound, so the coded zeros cost almost nothing;
- the new latents' gains start at the mean of the old channels' gains for each quality.
"""

from __future__ import annotations

import torch

from mcodec.codec.base import CodecError


def widen_state(model, old: dict[str, torch.Tensor], m_old: int) -> dict[str, torch.Tensor]:
    """The state of ``model`` (a mean-scale GainedHyperprior of latent width model.m) that computes what
    the same-architecture state ``old`` of latent width m_old does (module docstring)."""
    if getattr(model, "arch", None) != "mean-scale-hyperprior":
        raise CodecError("a wider latent is made for the mean-scale hyperprior only")
    m = model.m
    if not 0 < m_old < m:
        raise CodecError(f"--width: a latent of {m} channels does not widen one of {m_old}")
    fresh = {k: v.detach().clone() for k, v in model.named_parameters()}
    hidden_old = m_old * 3 // 2
    out: dict[str, torch.Tensor] = {}
    for name, new in fresh.items():
        if name not in old:
            raise CodecError(f"the model file has no {name}")
        value = old[name].float()
        if value.shape == new.shape:
            out[name] = value
            continue
        if name in ("log_gain", "log_inv_gain"):  # [Q, M]
            new[:, :m_old] = value
            new[:, m_old:] = value.mean(1, keepdim=True)
        elif name in ("net.g_a.6.weight", "net.g_a.6.bias"):  # conv N -> M: new latents are 0
            new.zero_()
            new[:m_old] = value
        elif name == "net.g_s.0.weight":  # deconv M -> N [M, N, k, k]: fresh rows for the new latents
            new[:m_old] = value
        elif name == "net.h_a.0.weight":  # conv M -> N [N, M, k, k]: the new latents not seen at first
            new.zero_()
            new[:, :m_old] = value
        elif name == "net.h_s.0.weight":  # deconv N -> M [N, M, k, k]: fresh new hidden units
            new[:, :m_old] = value
        elif name in ("net.h_s.0.bias", "net.h_s.2.bias"):
            new[: value.shape[0]] = value
        elif name == "net.h_s.2.weight":  # deconv M -> 3M/2 [M, 3M/2, k, k]: nothing out of new units
            new[m_old:] = 0
            new[:m_old, :hidden_old] = value
        elif name in ("net.h_s.4.weight", "net.h_s.4.bias"):  # conv 3M/2 -> 2M: [scales | means]
            new.zero_()
            cols = (slice(None),) if name.endswith("bias") else (slice(None), slice(0, hidden_old))
            new[(slice(0, m_old), *cols[1:])] = value[:m_old]
            new[(slice(m, m + m_old), *cols[1:])] = value[m_old:]
        else:
            raise CodecError(f"{name}: shape {tuple(value.shape)} does not widen to {tuple(new.shape)}")
        out[name] = new
    return out


def widen_synthesis(model, old: dict[str, torch.Tensor], ns_old: int) -> dict[str, torch.Tensor]:
    """The state of ``model`` (a hyperprior whose synthesis has model.ns hidden channels) that computes what
    ``old`` (the same model with ns_old) does: the reconstruction stays the file's while the new channels
    start to compute.

    compressai's g_s is deconv M->ns, IGDN, deconv ns->ns, IGDN, deconv ns->ns, IGDN, deconv ns->3. The new
    channels of each layer take fresh weights from every input (so they are not 0 and their outgoing
    weights get a gradient), and every weight out of them starts at 0: the old channels and the picture
    never see them at first. An IGDN normalizes its old channels by the old ones only (the fresh module's
    cross terms are 0, its diagonal the usual 0.1)."""
    ns = model.ns
    if not 0 < ns_old < ns:
        raise CodecError(f"--synthesis-width: {ns} hidden channels do not widen a synthesis of {ns_old}")
    out = {}
    for name, new in model.named_parameters():
        if name not in old:
            raise CodecError(f"the model file has no {name}")
        value, new = old[name].float(), new.detach().clone()
        if not name.startswith("net.g_s."):
            out[name] = value
            continue
        layer = int(name.split(".")[2])
        if name.endswith(".gamma"):  # [ns, ns]: the old block; fresh cross terms represent 0
            new[:ns_old, :ns_old] = value
        elif layer == 6 and name.endswith(".weight"):  # deconv ns -> 3 [ns, 3, k, k]
            new.zero_()
            new[:ns_old] = value
        elif layer == 6:  # the picture's bias
            new = value
        elif name.endswith(".weight") and layer > 0:  # deconv ns -> ns [in, out, k, k]
            new[ns_old:, :ns_old] = 0
            new[:ns_old, :ns_old] = value
        elif name.endswith(".weight"):  # deconv M -> ns [M, ns, k, k]
            new[:, :ns_old] = value
        else:  # biases and IGDN betas [ns]
            new[:ns_old] = value
        out[name] = new
    return out
