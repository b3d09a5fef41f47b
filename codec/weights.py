"""Loading shipped or user-given model files (safetensors only, never pickles) with their hash."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open

from mcodec.entropy import TableSet

from .base import CodecError

MODELS_DIR = Path(__file__).parent / "models"
MAX_WEIGHTS_BYTES = 512 << 20


@dataclass
class Weights:
    tensors: dict[str, torch.Tensor]
    metadata: dict[str, str]
    sha256: bytes  # of the file's bytes: what a bitstream records and a decoder checks
    path: Path

    def tables(self, prefix: str) -> TableSet:
        """The frozen entropy tables stored as ``{prefix}.freqs/.offsets/.lengths`` int32 tensors."""
        try:
            arrays = [
                self.tensors.pop(f"{prefix}.{k}").numpy().astype(np.int32)
                for k in ("freqs", "offsets", "lengths")
            ]
            return TableSet(*arrays)
        except (KeyError, ValueError) as e:
            raise CodecError(f"{self.path.name}: bad entropy tables {prefix!r} ({e})") from None


def load_weights(path: Path, arch: str | tuple[str, ...]) -> Weights:
    """Read a model file and check that it was made for ``arch`` or one of several (metadata key 'arch')."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_WEIGHTS_BYTES:
            raise CodecError(f"weights file {path} is too large ({size} bytes)")
        digest = hashlib.sha256(path.read_bytes()).digest()
        with safe_open(path, "pt") as f:
            metadata = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except OSError as e:
        raise CodecError(f"cannot read weights {path}: {e.strerror or e}") from None
    except (SafetensorError, ValueError) as e:
        raise CodecError(f"{path} is not a safetensors model file ({e})") from None
    archs = (arch,) if isinstance(arch, str) else arch
    if metadata.get("arch") not in archs:
        wanted = " or ".join(repr(a) for a in archs)
        raise CodecError(f"{path} holds a {metadata.get('arch', 'unknown')!r} model, not {wanted}")
    return Weights(tensors, metadata, digest, path)
