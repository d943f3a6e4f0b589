"""A finished run as data, loaded from its directory, and the sections reporters render from it.
`mikiwame report RUN_DIR` re-renders from these files without recomputing anything."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .errors import RunDirectoryError
from .rundir import require_finished

SCHEMA_VERSION = 1


@dataclass
class RunResults:
    directory: Path
    config: dict[str, Any]
    metrics: dict[str, Any]
    model_info: dict[str, Any]
    data_checks: dict[str, Any]
    analyses: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, directory: Path) -> RunResults:
        directory = require_finished(directory)

        def read(name: str) -> dict[str, Any]:
            path = directory / name
            return read_json_object(path) if path.is_file() else {}

        analyses = {p.stem: read_json_object(p) for p in sorted((directory / "analyses").glob("*.json"))}
        return cls(
            directory,
            read("config.json"),
            read("metrics.json"),
            read("model_info.json"),
            read("data_checks.json"),
            analyses,
        )

    def predictions(self) -> list[dict[str, Any]]:
        path = self.directory / "predictions.jsonl"
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise _damaged(path, f"not UTF-8 ({err.reason})") from None
        rows = []
        for number, line in enumerate(text.split("\n"), start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise _damaged(path, f"line {number} is not valid JSON ({err.msg})", f"{path}:{number}") from None
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "directory": str(self.directory),
            "config": self.config,
            "metrics": self.metrics,
            "model_info": self.model_info,
            "data_checks": self.data_checks,
            "analyses": self.analyses,
        }


def _damaged(path: Path, what: str, where: str | None = None) -> RunDirectoryError:
    return RunDirectoryError(
        f"{path.name} of this run is damaged: {what}",
        where=where or str(path),
        fix="restore the file from the original run directory, or re-run the training",
    )


def read_json_object(path: Path) -> dict[str, Any]:
    """A run's JSON file; a damaged one is one clear error naming the file and line."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise _damaged(path, f"not UTF-8 ({err.reason})") from None
    except json.JSONDecodeError as err:
        raise _damaged(path, f"not valid JSON ({err.msg})", f"{path}:{err.lineno}") from None
    if not isinstance(value, dict):
        raise _damaged(path, f"a JSON {type(value).__name__}, not an object")
    return value


@dataclass
class ReportSection:
    """One part of a report. `data` is what the JSON format shows; `rich` builds the terminal renderable; `html`
    builds an HTML fragment for the HTML report (framework/html.py has the pieces). A section without `html` is
    shown there through rich's HTML export of `rich`, else as its `data` in JSON."""

    name: str
    title: str
    order: int
    data: Any
    rich: Callable[[], Any] | None = None
    html: Callable[[], str] | None = None


class Reporter(Protocol):
    """A reporter plugin: `render` shows a run's sections (in `order`) its own way; `live` ones render at the
    end of every run, the others on `mikiwame report RUN_DIR --format NAME`. It may also implement the engine
    moments (`mikiwame_before_train`, ...): while a run lasts it is registered as a plugin. What `render`
    returns (a written file's path, or None) is the reporter's own."""

    name: str
    live: bool

    def render(self, results: RunResults, sections: list[ReportSection]) -> object: ...
