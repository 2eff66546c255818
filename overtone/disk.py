"""The cache root; disk space checks before large writes, so a cache never fills a disk silently;
file checksums; atomic writes."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from pathlib import Path

from overtone.errors import OvertoneError

log = logging.getLogger(__name__)


def cache_root() -> Path:
    """Where the toolkit keeps what it can rebuild (rendered corpora, PCM and embedding caches):
    `$OVERTONE_CACHE`, else ~/.cache/overtone."""
    return Path(os.environ.get("OVERTONE_CACHE", Path.home() / ".cache" / "overtone"))


class DiskSpaceError(OvertoneError, OSError):
    """Not enough free space for a write the toolkit is about to make."""


def ensure_free(folder: str | Path, needed_bytes: float, what: str, *, margin: float = 1.1) -> None:
    """Log how much `what` will write into `folder`; raise if the disk lacks `margin` × that."""
    folder = Path(folder)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    free = shutil.disk_usage(existing).free
    log.info("%s: about %.1f MB into %s (%.1f GB free)", what, needed_bytes / 1e6, folder, free / 1e9)
    if needed_bytes * margin > free:
        raise DiskSpaceError(
            f"{what} needs about {needed_bytes / 1e6:.0f} MB in {folder} but only {free / 1e6:.0f} MB are free; "
            "free space or point the cache elsewhere ($OVERTONE_CACHE or the config's cache option)"
        )


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 4 MB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def tree_sha256(tree) -> str:
    """Hex SHA-256 over every array of a pytree: each leaf's path, dtype, shape and bytes, in path
    order. The identity of a set of weights (bundles, the embedding cache, run summaries)."""
    import jax  # here, not at the top: the audio and file helpers of this layer do not need it
    import numpy as np

    digest = hashlib.sha256()
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    for path, leaf in sorted(flat, key=lambda item: jax.tree_util.keystr(item[0])):
        array = np.ascontiguousarray(np.asarray(jax.device_get(leaf)))
        digest.update(f"{jax.tree_util.keystr(path)}|{array.dtype}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write through a hidden partial file and rename: a reader sees the old file or the new one."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text)
    partial.replace(path)
