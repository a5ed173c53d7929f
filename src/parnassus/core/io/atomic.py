"""Atomic outputs: write to a temporary name beside the target, rename when complete.

An interrupted or failed write leaves no file that looks finished: the target
either does not exist, keeps its previous content, or is complete.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from pathlib import Path

log = logging.getLogger(__name__)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike):
    """Yield a temporary path in the target's folder; rename it to ``path`` on success.

    The temporary name keeps the target's suffixes (``.root``, ``.hepmc.gz``) so
    writers that pick a format from the suffix still work. On any exception the
    temporary file or folder is removed and the exception propagates.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    suffixes = "".join(target.suffixes)
    stem = target.name[: len(target.name) - len(suffixes)] if suffixes else target.name
    temporary = target.with_name(f".{stem}.partial-{os.getpid()}{suffixes}")
    try:
        yield temporary
        os.replace(temporary, target)
        log.debug("wrote %s", target)
    except BaseException:
        if temporary.is_dir():
            shutil.rmtree(temporary, ignore_errors=True)
        elif temporary.exists():
            temporary.unlink()
        raise
