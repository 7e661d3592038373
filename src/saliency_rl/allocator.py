"""Keep freed memory in the process: large tensors are then reused, not page-faulted in anew.

glibc's malloc serves every allocation above its mmap threshold (at most 32 MB) with a fresh
``mmap`` and returns it to the kernel when freed, so a training step that allocates the same
few hundred megabytes of activations every update pays for faulting them in every time: on
one CPU thread a drq update at batch 256 spent about a sixth of its time in the kernel, and
ran 7-30 % faster with mmap off and trimming off (benchmarks/results/sac_speed_drq.md). The
price: the process keeps its peak heap until it exits, which a training process reaches
anyway.

This is a process-wide setting, so only the owner of the process should make it:
``saliency-rl train sac`` calls :func:`keep_freed_memory` first (the other trainers may
follow with the same one line); a notebook user may call it too.
Nothing happens off glibc (macOS, musl, Windows).
"""

from __future__ import annotations

import ctypes
import ctypes.util

_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
_M_MMAP_MAX = -4
_DEFAULT_TRIM_THRESHOLD = 128 * 1024
_DEFAULT_MMAP_MAX = 65536


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "gnu_get_libc_version") else None


def keep_freed_memory(keep: bool = True) -> bool:
    """``keep``: serve all allocations from the heap and never trim it (glibc
    ``mallopt(M_MMAP_MAX, 0)`` and ``mallopt(M_TRIM_THRESHOLD, 2 GiB - 1)``); False: glibc's
    defaults again. Returns whether the setting was made (False off glibc)."""
    libc = _libc()
    if libc is None:
        return False
    mmap_max = 0 if keep else _DEFAULT_MMAP_MAX
    trim = 2**31 - 1 if keep else _DEFAULT_TRIM_THRESHOLD
    return bool(libc.mallopt(_M_MMAP_MAX, mmap_max)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, trim))
