"""Model files: the one writer and the one checked loader every codec's weights go through.

A model file is safetensors (never a pickle): the network's tensors, frozen integer entropy tables as
``{prefix}.freqs/.offsets/.lengths`` int32 tensors, and string metadata (``arch`` names the network it was
made for, ``model_id`` goes into every file coded with it, the rest are architecture sizes and training
facts). Loading checks the size, the format, the architecture and every number read from the metadata
before a network is built from it, so a wrong or damaged file is a one-line ``CodecError``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from mcodec.entropy import TableSet

from .atomic_write import atomic_output
from .base import CodecError

MODELS_DIR = Path(__file__).parent / "models"
MAX_WEIGHTS_BYTES = 512 << 20
TABLE_FIELDS = ("freqs", "offsets", "lengths")


@dataclass
class Weights:
    tensors: dict[str, torch.Tensor]
    metadata: dict[str, str]
    sha256: bytes  # of the file's bytes: what a bitstream records and a decoder checks
    path: Path

    def tables(self, prefix: str) -> TableSet:
        """The frozen entropy tables stored under ``prefix`` (taken out of ``tensors``)."""
        try:
            arrays = [self.tensors.pop(f"{prefix}.{k}").numpy().astype(np.int32) for k in TABLE_FIELDS]
            return TableSet(*arrays)
        except (KeyError, ValueError) as e:
            raise CodecError(f"{self.path.name}: bad entropy tables {prefix!r} ({e})") from None

    def int_meta(self, key: str, lo: int, hi: int, default: int | None = None) -> int:
        """An integer metadata field within [lo, hi] (an architecture size: checked before it sizes a
        network); ``default`` where the field is absent, or an error if None."""
        raw = self.metadata.get(key)
        if raw is None and default is not None:
            return default
        try:
            value = int(json.loads(raw))
        except (TypeError, ValueError):
            value = None
        if value is None or str(value) != str(raw).strip() or not lo <= value <= hi:
            raise CodecError(f"{self.path.name}: metadata {key}={raw!r} is not an integer in {lo}..{hi}")
        return value

    def model_id(self, fallback: str) -> str:
        return self.metadata.get("model_id", fallback)


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


def default_weights(codec_id: str, weights: Path | None, train_hint: str) -> Path:
    """The file to load: ``weights``, else the shipped ``models/{codec_id}.safetensors`` (an error that
    says how to make one where none is shipped)."""
    if weights is not None:
        return Path(weights)
    path = MODELS_DIR / f"{codec_id}.safetensors"
    if not path.exists():
        raise CodecError(
            f"no default weights for {codec_id} are shipped yet: train one with `{train_hint}` "
            "and pass --weights FILE"
        )
    return path


def load_state(
    model: torch.nn.Module, w: Weights, derived: Callable[[str], bool] = lambda key: False
) -> None:
    """Load the file's tensors (as float32) into ``model``; every entry of the model's state must come
    from the file unless ``derived(key)``: buffers the model computes itself (compressai's CDF tables,
    EMA statistics of training)."""
    state = {k: v.float() if v.is_floating_point() else v for k, v in w.tensors.items()}
    try:
        model.load_state_dict(state, strict=False)
    except RuntimeError as e:
        raise CodecError(f"{w.path.name} does not fit the model: {str(e).splitlines()[0][:160]}") from None
    missing = {k for k in set(model.state_dict()) - set(state) if not derived(k)}
    if missing:
        raise CodecError(f"{w.path.name} lacks tensors: {', '.join(sorted(missing)[:3])}")


def write_model_file(
    out: Path,
    tensors: dict[str, torch.Tensor],
    tables: dict[str, TableSet],
    metadata: dict[str, str],
) -> None:
    """Write a model file atomically (readable by all: it may be shipped): floating tensors as fp16,
    others as they are, each table set as int32 ``{prefix}.freqs/.offsets/.lengths``, string metadata
    (``arch`` and ``model_id`` required)."""
    if "arch" not in metadata or "model_id" not in metadata:
        raise ValueError("a model file's metadata needs 'arch' and 'model_id'")
    stored = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in tensors.items()}
    for prefix, t in tables.items():
        for name in TABLE_FIELDS:
            stored[f"{prefix}.{name}"] = torch.from_numpy(np.ascontiguousarray(getattr(t, name)))
    with atomic_output(Path(out), force=True, make_parents=True) as tmp:
        save_file(stored, tmp, metadata={k: str(v) for k, v in metadata.items()})
