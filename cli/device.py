"""The --device check every command that runs a network shares."""

from __future__ import annotations

from mcodec.codec import CodecError


def check_device(value: str) -> str:
    """``value`` itself, or a one-line error when CUDA is asked for and there is none."""
    if value == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise CodecError("--device cuda: no CUDA device is available")
    return value
