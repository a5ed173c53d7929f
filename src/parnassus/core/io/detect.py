"""Recognise event file formats: by content for reading, by suffix for writing."""

from __future__ import annotations

import gzip
import logging
import os
from pathlib import Path

from parnassus.exceptions import InputFileNotFoundError, UnknownFormatError

log = logging.getLogger(__name__)

ROOT = "root"
PARQUET = "parquet"
HEPMC = "hepmc"

#: Output suffixes of each format (lower case).
SUFFIXES = {
    ".root": ROOT,
    ".parquet": PARQUET,
    ".hepmc": HEPMC,
    ".hepmc3": HEPMC,
    ".hepmc.gz": HEPMC,
    ".hepmc3.gz": HEPMC,
}

# First bytes of each format: ROOT files open with "root", Parquet files with
# "PAR1", gzip streams with 1f 8b, HepMC3 ASCII files with "HepMC::Version" or
# directly with "HepMC::Asciiv3-START_EVENT_LISTING".
_ROOT_MAGIC = b"root"
_PARQUET_MAGIC = b"PAR1"
_GZIP_MAGIC = b"\x1f\x8b"
_HEPMC3_MARKERS = (b"HepMC::Version", b"HepMC::Asciiv3")
_HEPMC2_MARKER = b"HepMC::IO_GenEvent"


def format_from_suffix(path: str | os.PathLike) -> str:
    """Return the format ("root", "parquet" or "hepmc") that the suffix of ``path`` names.

    Raises:
        UnknownFormatError: the suffix is not one of .root, .parquet, .hepmc, .hepmc3, .hepmc.gz, .hepmc3.gz.
    """
    name = Path(path).name.lower()
    for suffix in sorted(SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return SUFFIXES[suffix]
    raise UnknownFormatError(
        f"cannot tell the format of {path} from its name; use one of the suffixes {', '.join(SUFFIXES)}"
    )


def _head(path: Path, size: int = 256) -> bytes:
    with open(path, "rb") as stream:
        head = stream.read(size)
    if head.startswith(_GZIP_MAGIC):
        try:
            with gzip.open(path, "rb") as stream:
                return _GZIP_MAGIC + stream.read(size)
        except (OSError, EOFError) as error:
            raise UnknownFormatError(f"{path} starts like a gzip file but cannot be decompressed: {error}") from error
    return head


def detect_format(path: str | os.PathLike) -> str:
    """Return the format of an existing event file from its first bytes.

    The content decides, not the suffix: a text file named ``x.root`` is rejected.

    Args:
        path: the file.

    Returns:
        "root", "parquet" or "hepmc" (HepMC3 ASCII, plain or gzip).

    Raises:
        InputFileNotFoundError: the file does not exist.
        UnknownFormatError: the content is not ROOT, Parquet or HepMC3.
    """
    path = Path(path)
    if not path.exists():
        raise InputFileNotFoundError(f"input file {path} not found")
    if path.is_dir():
        raise UnknownFormatError(f"{path} is a folder, expected a ROOT, Parquet or HepMC3 file")

    head = _head(path)
    if head.startswith(_ROOT_MAGIC):
        found = ROOT
    elif head.startswith(_PARQUET_MAGIC):
        found = PARQUET
    else:
        text = head[len(_GZIP_MAGIC):] if head.startswith(_GZIP_MAGIC) else head
        text = text.lstrip()
        # HepMC2 files also open with "HepMC::Version", so the listing marker decides.
        if _HEPMC2_MARKER in text:
            raise UnknownFormatError(
                f"{path} is a HepMC2 file; parnassus reads HepMC3 ASCII. Convert it, for example by writing "
                "the events again with HepMC3 (pyhepmc.open(out, 'w'))"
            )
        elif text.startswith(_HEPMC3_MARKERS):
            found = HEPMC
        else:
            if not head:
                raise UnknownFormatError(f"{path} is empty, expected a ROOT, Parquet or HepMC3 file")
            preview = text[:40].decode("ascii", errors="replace")
            raise UnknownFormatError(
                f"{path} is not a ROOT, Parquet or HepMC3 file (it starts with {preview!r}); "
                "check that the path names an event file"
            )

    try:
        expected = format_from_suffix(path)
    except UnknownFormatError:
        expected = found
    if expected != found:
        log.warning("%s has the suffix of a %s file but contains %s; reading it as %s", path, expected, found, found)
    return found
