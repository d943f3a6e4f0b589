"""mikiwame's core: config, plugin manager, engine, run directory. No task knowledge lives here."""

from .hookspecs import hookimpl

__all__ = ["hookimpl"]
