"""Making a network's CPU output independent of the thread count.

oneDNN picks kernels (and so summation orders) by problem shape and thread count: the same 1x1
convolution of a GDN layer gave different float32 results with 1 and 2 threads. torch's native
convolution (im2col + GEMM) gave bit-identical results for 1..4 threads at ~1.7x the time, so
reconstruction runs on that path: decoding the same file gives the same bytes on any thread count.

That path is not enough for every op: with oneDNN off, torch's GELU splits a tensor between threads at
offsets that depend on the thread count, and the elements at a seam take its scalar path, which differs
from the vectorized one in the last bit (HNeRV decoded 2 of 27.6M pixels differently with 1 and 2
threads). ``map_single_threaded`` removes the split: every op runs on one thread, items in parallel.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
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


@contextmanager
def _one_thread_each():
    """A pool of as many workers as torch had intra-op threads, with torch's threads set to 1 (restored
    after): each call then runs every op on one thread, at full use of the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(threads) as pool:
            yield pool
    finally:
        torch.set_num_threads(threads)


def _no_grad(fn: Callable, *args):
    with torch.no_grad():  # grad mode is per thread
        return fn(*args)


def map_single_threaded(fn: Callable, items: Iterable) -> list:
    """[fn(item) for item in items] with torch's intra-op threads set to 1 (restored after) and as many
    items at once as there were threads: the result of each item is then independent of the thread
    count, at full use of the cores. Only for the CPU; runs inside ``thread_independent``."""
    with _one_thread_each() as pool:
        return list(pool.map(lambda item: _no_grad(fn, item), items))


def map_beside(first: Callable, fn: Callable, items: Iterable) -> tuple:
    """(first(), [fn(item, f) for item in items]), as ``map_single_threaded`` runs them: every op on one
    thread, as many calls at once as there were threads. ``first`` starts before any item; the items take
    the other threads, and its thread once it is done. f is first's Future, for fn to check (``f.done()``)
    or wait on (``f.result()``, which re-raises first's error)."""
    with _one_thread_each() as pool:
        head: Future = pool.submit(_no_grad, first)  # the queue is first in, first out: it starts first
        rest = [pool.submit(_no_grad, fn, item, head) for item in items]
        return head.result(), [r.result() for r in rest]


def map_per_item(fn: Callable, items: Iterable, device: str = "cpu") -> list:
    """[fn(item) for item in items] inside ``thread_independent``; on the CPU through
    ``map_single_threaded``, so each result is the same for any thread count."""
    with thread_independent(device):
        if str(device).startswith("cpu"):
            return map_single_threaded(fn, items)
        return [fn(item) for item in items]
