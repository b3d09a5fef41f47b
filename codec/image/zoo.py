"""compressai zoo checkpoints as codecs (``compressai:bmshj2018-hyperprior``, ``compressai:mbt2018-mean``):
a user's checkpoint loads into our gained hyperprior with one quality and unit gains and codes through
the same bitstream path as ``hyperprior`` / ``meanscale``. Nothing is downloaded: the user passes the
file (``--weights``)."""

from __future__ import annotations

import copy
import hashlib
import io
from pathlib import Path

import torch

from mcodec.codec.base import CodecError, CodecInfo
from mcodec.entropy import gaussian_tables

from .bottleneck_tables import factorized_tables
from .hyperprior import HyperpriorCodec
from .hyperprior_model import GainedHyperprior

ZOO = {
    "compressai:bmshj2018-hyperprior": "scale-hyperprior",
    "compressai:mbt2018-mean": "mean-scale-hyperprior",
}
# No presets beyond "fast": refinement optimizes the training lambda, which a zoo checkpoint does not say.
INFOS = {
    cid: CodecInfo(
        cid,
        "image",
        (1, 1),
        1,
        f"compressai zoo checkpoint ({cid[11:]}), needs --weights FILE; the checkpoint fixes the quality",
        presets=("fast",),
        default_preset="fast",
    )
    for cid in ZOO
}


def load_zoo(codec_id: str, weights: Path | None = None) -> HyperpriorCodec:
    """A compressai zoo checkpoint (a state dict saved by torch, loaded with weights_only=True, or
    safetensors). Its tables are built once here, in float64, from the checkpoint's own density."""
    if weights is None:
        raise CodecError(f"{codec_id} needs --weights FILE (a compressai checkpoint; none is shipped)")
    path = Path(weights)
    try:
        data = path.read_bytes()
        if path.suffix == ".safetensors":
            from safetensors.torch import load as load_safetensors

            state = load_safetensors(data)
        else:
            state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except OSError as e:
        raise CodecError(f"cannot read weights {path}: {e.strerror or e}") from None
    except Exception as e:  # noqa: BLE001 - any unreadable checkpoint is one user error
        raise CodecError(f"{path} is not a readable checkpoint ({type(e).__name__})") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict) or "g_a.0.weight" not in state or "g_a.6.weight" not in state:
        raise CodecError(f"{path} is not a compressai hyperprior state dict")
    n, m = state["g_a.0.weight"].shape[0], state["g_a.6.weight"].shape[0]
    model = GainedHyperprior(ZOO[codec_id], n, m, qualities=1)
    with torch.no_grad():
        model.log_gain.zero_()
        model.log_inv_gain.zero_()
    try:
        model.net.load_state_dict(state)  # compressai's loader resizes its CDF buffers and remaps old keys
    except (RuntimeError, KeyError) as e:
        raise CodecError(f"{path} does not fit {codec_id}: {str(e).splitlines()[0][:160]}") from None
    ytables = gaussian_tables()
    codec = HyperpriorCodec(
        INFOS[codec_id],
        model,
        factorized_tables(copy.deepcopy(model.entropy_bottleneck)),
        ytables,
        codec_id,
        hashlib.sha256(data).digest(),
    )
    # their choices weigh bytes against error by the lambda, which is not known
    codec.low_frequency = codec.restoration_filter = False
    return codec
