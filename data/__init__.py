"""Data the project ships, written for it (headlines, entity lists, prompt files). Installed as package data
of `mikiwame.data`, so that a wheel or a plain `pip install .` finds it as an editable install does: read it
through `bundled`, never through a path relative to a source file."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def bundled(*parts: str) -> Path:
    """A shipped file or folder as a file-system path (the readers here take paths; mikiwame is installed
    unzipped, as pip installs every wheel)."""
    return Path(str(files(__name__).joinpath(*parts)))
