"""Peak resident memory and wall time of a child process: what the *_memory.py benchmarks measure."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time


def peak(cmd: list[str]) -> tuple[float, float]:
    """(peak RSS in MB, wall seconds) of one child process; exits with the tail of its stderr if it
    fails. Its stderr goes to a file, not a pipe: a chatty child (progress bars) cannot fill the pipe
    and stall while this process waits for it."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        if status:
            err.seek(0)
            sys.exit(f"{' '.join(cmd)} failed: {err.read().decode(errors='replace')[-500:]}")
        return usage.ru_maxrss / 1024, time.perf_counter() - t0
