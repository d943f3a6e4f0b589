"""Readers for the shared corpora the benchmarks run on. They read from a path (default ../shared/data beside
the repository, or MIKIWAME_SHARED_DATA) and never copy the text anywhere: the licences forbid it."""

from __future__ import annotations

import csv
import os
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def shared_data(given: str | None = None) -> Path:
    path = Path(given or os.environ.get("MIKIWAME_SHARED_DATA") or REPO.parent / "shared" / "data")
    if not path.is_dir():
        sys.exit(f"shared corpora not found at {path}: give --data DIR or set MIKIWAME_SHARED_DATA")
    return path


def livedoor_titles(data: Path) -> tuple[list[str], list[str]]:
    """Line 3 (the title) of every article and its category folder, in archive order."""
    texts, labels = [], []
    with tarfile.open(data / "livedoor" / "ldcc-20140209.tar.gz") as archive:
        for member in archive:
            parts = member.name.split("/")
            if not (member.isfile() and len(parts) == 3 and parts[2].startswith(parts[1] + "-")):
                continue
            lines = archive.extractfile(member).read().decode("utf-8").splitlines()
            texts.append(lines[2])
            labels.append(parts[1])
    return texts, labels


def jrte_pn_texts(data: Path) -> list[str]:
    """Column 3 (the review text) of JRTE pn.tsv (no header)."""
    with (data / "jrte" / "pn.tsv").open(encoding="utf-8", newline="") as fh:
        return [row[2] for row in csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)]
