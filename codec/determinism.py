"""Making a network's CPU output independent of the thread count.

oneDNN picks kernels (and so summation orders) by problem shape and thread count: the same 1x1
convolution of a GDN layer gave different float32 results with 1 and 2 threads. torch's native
convolution (im2col + GEMM) gave bit-identical results for 1..4 threads at ~1.7x the time, so
reconstruction runs on that path: decoding the same file gives the same bytes on any thread count.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager

import torch


@contextmanager
def thread_independent(device: str = "cpu"):
    """No autograd, and on the CPU no oneDNN, for the duration of the block."""
    with torch.no_grad():
        if str(device).startswith("cpu"):
            with warnings.catch_warnings():  # flags() also sets oneDNN's TF32 switch, which warns
                warnings.simplefilter("ignore", UserWarning)
                flags = torch.backends.mkldnn.flags(enabled=False)
                flags.__enter__()
            try:
                yield
            finally:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)
                    flags.__exit__(None, None, None)
        else:
            yield
