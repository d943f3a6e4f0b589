"""Named registries filled by plugins through the `register_*` hooks.

The core checks every registration's name here, so a clash or a typo is reported with both plugin names or a
near-miss suggestion instead of one plugin silently shadowing another.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from .errors import ConfigError, PluginError

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    item: T
    plugin: str


class Registry(Generic[T]):
    """Things of one kind (tasks, models, ...) by name, each remembering which plugin added it."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def add(self, name: str, item: T, plugin: str) -> None:
        if not name or name != name.strip():
            raise PluginError(f"plugin {plugin!r} registered a {self.kind} with an empty or padded name {name!r}")
        if name in self._entries:
            first = self._entries[name].plugin
            raise PluginError(
                f"{self.kind} {name!r} is registered twice: by plugin {first!r} and by plugin {plugin!r}",
                fix="rename one of them, or limit loaded plugins with MIKIWAME_PLUGINS (see `mikiwame plugins`)",
            )
        self._entries[name] = Entry(name, item, plugin)

    def registrar(self, plugin: str, name_of: Callable[[T], str]) -> Callable[[T], None]:
        """The `register` callback handed to one plugin's hook implementation."""
        return lambda item: self.add(name_of(item), item, plugin)

    def get(self, name: str, *, option: str | None = None) -> T:
        try:
            return self._entries[name].item
        except KeyError:
            raise ConfigError(self.unknown_message(name), where=option) from None

    def unknown_message(self, name: str) -> str:
        known = sorted(self._entries)
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        return f"unknown {self.kind} {name!r}.{hint} Known: {', '.join(known) or '(none)'}"

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(sorted(self._entries.values(), key=lambda e: e.name))

    def names(self) -> list[str]:
        return sorted(self._entries)
