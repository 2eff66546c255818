"""Process-wide speed settings every entry point applies (runtime.cli) and the benchmarks use.

* `keep_freed_memory`: XLA's CPU runtime allocates each step's large temporaries (im2col-sized
  convolution buffers of 100+ MB for VGGish) afresh. glibc serves any block above 32 MB with
  a new `mmap` and unmaps it on free, so every step page-faults its temporaries in again: on
  the 2-core machine the VGGish train step ran 20 % slower and plain copies ran at 2 GB/s
  instead of 20 (`python -m benchmarks` measures both settings side by side). Telling glibc
  never to use mmap for the heap and never to trim it keeps freed pages for reuse. The cost:
  the process keeps its peak heap until it exits, as jemalloc-style allocators do. Linux/glibc
  only (`mallopt` through ctypes, since no Python package exposes it); a no-op elsewhere, and
  `OVERTONE_SYSTEM_ALLOCATOR=1` turns it off.
* `enable_compilation_cache`: JAX's persistent compilation cache, so a rerun (a resume, the
  next seed, a sweep) loads its compiled steps instead of compiling them again. The folder is
  `$OVERTONE_COMPILATION_CACHE`, else ~/.cache/overtone/xla; `OVERTONE_COMPILATION_CACHE=off`
  turns it off.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys
from pathlib import Path

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1  # glibc malloc.h
_M_MMAP_MAX = -4


def keep_freed_memory() -> bool:
    """Keep freed heap memory in the process (see the module docstring); True if applied."""
    if os.environ.get("OVERTONE_SYSTEM_ALLOCATOR") == "1" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other libcs have no mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    applied = bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
    if not applied:
        log.warning("mallopt refused; large temporaries will be page-faulted in at every step")
    return applied


def compilation_cache_dir() -> Path | None:
    setting = os.environ.get("OVERTONE_COMPILATION_CACHE", "")
    if setting.lower() in ("off", "0", "none"):
        return None
    return Path(setting).expanduser() if setting else Path.home() / ".cache" / "overtone" / "xla"


def enable_compilation_cache() -> Path | None:
    """Turn on JAX's persistent compilation cache; returns its folder (None when turned off)."""
    import jax

    folder = compilation_cache_dir()
    if folder is None:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return folder
