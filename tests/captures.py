"""The captured journal streams the tests and benchmarks read.

They live in ``tests/fixtures/`` (see its README): the small ones as
the broker sent them, ``jobs-10k.jsonl`` gzipped.  :func:`capture_dir`
is a directory holding every capture under its plain ``.jsonl`` name,
the compressed ones decompressed once into ``<repo>/.cache/captures``
(kept while the compressed file is unchanged), so that a test can hand
a capture's path to ``--replay`` as a user would.
"""

import gzip
import os
import shutil
from pathlib import Path

__all__ = ["CAPTURES", "capture_dir", "capture_path"]

REPO_ROOT = Path(__file__).resolve().parent.parent
#: Where the repository keeps the captures.
CAPTURES = REPO_ROOT / "tests" / "fixtures"
_CACHE = REPO_ROOT / ".cache" / "captures"


def _decompressed(packed):
    """The path of *packed*'s (a ``.gz`` capture) contents, decompressed
    into the cache unless already there for this version of it."""
    target = _CACHE / packed.name[: -len(".gz")]
    stamp = packed.stat()
    if target.is_file() and target.stat().st_mtime_ns == stamp.st_mtime_ns:
        return target
    _CACHE.mkdir(parents=True, exist_ok=True)
    # Written aside and renamed: a run killed midway (or a concurrent
    # one) never leaves a truncated capture under the real name.
    partial = target.with_name(f"{target.name}.{os.getpid()}.part")
    with gzip.open(packed, "rb") as src, open(partial, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    os.utime(partial, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    os.replace(partial, target)
    return target


def capture_dir():
    """A directory with every capture as ``NAME.jsonl``: the repository's
    own when nothing there is compressed, else the cache."""
    packed = sorted(CAPTURES.glob("*.jsonl.gz"))
    if not packed:
        return CAPTURES
    for path in packed:
        _decompressed(path)
    for plain in CAPTURES.glob("*.jsonl"):
        link = _CACHE / plain.name
        if not link.exists():
            link.symlink_to(plain)
    return _CACHE


def capture_path(name):
    """The path of capture *name* (``jobs-10k.jsonl``, ...), plain text."""
    path = capture_dir() / name
    if not path.is_file():
        raise FileNotFoundError(f"no capture {name} in {CAPTURES}")
    return path
