"""Process-wide settings that make CPU inference faster.

glibc's ``malloc`` serves every block above its mmap threshold (128 KiB, raised on the fly to at most 32 MiB)
with a fresh ``mmap`` and returns it to the system on ``free``. A network pass allocates and frees tens of
activation tensors of tens of megabytes each, so every one of them is page-faulted in anew, zeroed by the
kernel and unmapped again: on a 2-core CPU a GELU over a 37 MB tensor takes 11-12 ms, against 4-5 ms without them,
and a CORUN pass at 400x720 takes 2.0 s instead of 1.1 s (``docs/learned.md``, "Speed").

:func:`tune_allocator` raises the mmap threshold and the trim threshold to 1 GiB, so freed blocks stay in the
heap and are reused. The cost: the process keeps its peak memory instead of giving it back between passes.
``clearsight`` commands call it at start; Python users call ``cs.tune_allocator()`` once. It does nothing
outside Linux with glibc, or when the environment variable ``CLEARSIGHT_MALLOC`` is ``0``.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import sys
from pathlib import Path

__all__ = [
    "tune_allocator",
    "limit_memory",
    "is_out_of_memory",
    "release_memory",
    "available_memory",
    "resident_memory",
    "peak_memory",
    "one_thread",
]

#: ``mallopt`` parameters (``malloc.h``).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_TUNED: bool | None = None


def _libc():
    return ctypes.CDLL("libc.so.6")  # glibc's soname on every Linux (find_library would spawn ldconfig)


def tune_allocator(threshold: int = 1 << 30) -> bool:
    """Keep blocks below ``threshold`` bytes in glibc's heap (see the module notes); returns whether it applied.

    Idempotent; a no-op (``False``) on other platforms and C libraries and with ``CLEARSIGHT_MALLOC=0``.
    """
    global _TUNED
    if os.environ.get("CLEARSIGHT_MALLOC", "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    if _TUNED is not None:
        return _TUNED
    if not 0 < threshold < 2**31:
        raise ValueError(f"threshold must be a positive int below 2 GiB, got {threshold}")
    ok = False
    if sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc":
        try:
            mallopt = _libc().mallopt
            mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
            ok = bool(mallopt(_M_MMAP_THRESHOLD, threshold)) and bool(mallopt(_M_TRIM_THRESHOLD, threshold))
        except (OSError, AttributeError):
            ok = False
    _TUNED = ok
    return ok


def limit_memory(nbytes: int | None) -> int | None:
    """Cap this process's data memory (``RLIMIT_DATA``) at ``nbytes``, so that an allocation past it fails with
    an error the program can report instead of the kernel's out-of-memory kill; returns the limit set.

    ``None`` sets a backstop of 90% of the machine's memory (``MemTotal``): one process can then never take the
    whole machine, whatever else runs. Never raises the limit above the hard limit; a no-op (``None``) where
    resource limits are unavailable.
    """
    try:
        import resource
    except ImportError:  # not POSIX
        return None
    if nbytes is None:
        total = _proc_field("/proc/meminfo", "MemTotal")
        if total is None:
            return None
        nbytes = int(0.9 * total)
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if hard != resource.RLIM_INFINITY:
        nbytes = min(nbytes, hard)
    try:
        resource.setrlimit(resource.RLIMIT_DATA, (nbytes, hard))
    except (ValueError, OSError):
        return None
    return nbytes


#: How a failed allocation reads in torch's errors: its allocator's, and oneDNN's when the workspace of a
#: convolution cannot be allocated (under a memory cap it fails that way about half the time).
_OOM_MESSAGES = ("can't allocate memory", "could not create a primitive")


def release_memory() -> None:
    """Give the heap's free memory back to the system (glibc ``malloc_trim``), after a failed allocation: the
    tuned allocator (:func:`tune_allocator`) keeps freed blocks, which under a memory cap would leave the next
    file no room. A no-op outside glibc."""
    if sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc":
        try:
            _libc().malloc_trim(0)
        except (OSError, AttributeError):
            pass


def is_out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` is a failed allocation (Python's ``MemoryError`` or torch's or oneDNN's allocation error)."""
    return isinstance(error, MemoryError) or (
        isinstance(error, RuntimeError) and any(m in str(error) for m in _OOM_MESSAGES)
    )


def _proc_field(path: str, key: str) -> int | None:
    """A ``key: N kB`` field of a /proc file in bytes, or ``None`` where it cannot be read."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def available_memory() -> int | None:
    """Memory the system can give without swapping (``MemAvailable``), or ``None`` where unknown."""
    return _proc_field("/proc/meminfo", "MemAvailable")


def resident_memory() -> int | None:
    """This process's resident memory now (``VmRSS``), or ``None`` where unknown."""
    return _proc_field("/proc/self/status", "VmRSS")


def peak_memory() -> int | None:
    """This process's peak resident memory (``VmHWM``) since it started or since the last reset."""
    return _proc_field("/proc/self/status", "VmHWM")


@contextlib.contextmanager
def one_thread():
    """Run torch's CPU operators on one intra-op thread inside the block, for bit-reproducible outputs.

    With two threads, torch 2.13 sometimes (about one process in five) computes ``exp`` of the second
    thread's half of a tensor with an error near 1e-4, so the same seed gave different 16-bit PNGs from run
    to run; with one thread the result is the same in every process. ``clearsight synth`` runs under it: its
    images are small, so the second thread bought little.
    """
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)
