"""Entropy layer: frozen integer tables, rANS coding primitives (constriction) and the container."""

from .coder import (
    EntropyDecodeError,
    decode_categorical,
    decode_factorized,
    decode_indexed,
    encode_categorical,
    encode_factorized,
    encode_indexed,
)
from .container import Container, ContainerError, Header, read_container, write_container
from .gaussian import decode_gaussian, encode_gaussian, gaussian_tables, scale_indexes, scale_table
from .tables import PRECISION, TableSet, quantize_pmf

__all__ = [
    "PRECISION",
    "Container",
    "ContainerError",
    "EntropyDecodeError",
    "Header",
    "TableSet",
    "decode_categorical",
    "decode_factorized",
    "decode_gaussian",
    "decode_indexed",
    "encode_categorical",
    "encode_factorized",
    "encode_gaussian",
    "encode_indexed",
    "gaussian_tables",
    "quantize_pmf",
    "read_container",
    "scale_indexes",
    "scale_table",
    "write_container",
]
