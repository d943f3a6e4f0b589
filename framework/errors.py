"""The errors a user can cause, each carrying the input, the place and the fix.

Library exceptions are caught at the boundary and re-raised as one of these, so the CLI can print one
clear message instead of a traceback from deep inside torch or transformers.
"""

from __future__ import annotations


class MikiwameError(Exception):
    """Base class: `str(err)` is the whole message shown to the user."""

    def __init__(self, what: str, *, where: str | None = None, fix: str | None = None) -> None:
        self.what = what
        self.where = where
        self.fix = fix
        parts = [f"{where}: {what}" if where else what]
        if fix:
            parts.append(f"Fix: {fix}")
        super().__init__("\n".join(parts))


class ConfigError(MikiwameError):
    """An option or config value that cannot work."""


class DataError(MikiwameError):
    """A data file that cannot be read or does not make a usable task."""


class ModelError(MikiwameError):
    """A model that cannot be found or loaded."""


class PeftError(MikiwameError):
    """A PEFT method that cannot apply to the model it was given."""


class PluginError(MikiwameError):
    """A plugin that registers something invalid or clashing."""


class RunDirectoryError(MikiwameError):
    """A run directory that is missing or incomplete."""


class TrainingDiverged(MikiwameError):
    """The loss became NaN or infinite: the partial run directory is kept to inspect (never renamed finished)."""

    keeps_partial = True
