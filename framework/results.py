"""A finished run as data, loaded from its directory, and the sections reporters render from it.
`mikiwame report RUN_DIR` re-renders from these files without recomputing anything."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, Protocol

from .limits import refuse_long_received_texts
from .rundir import PENDING_ANALYSES, require_finished
from .runfiles import Between, Count, Fraction, Nullable, Obj, check, read_json, read_jsonl

SCHEMA_VERSION = 1

# What the core's reporters and analyzers read from a finished run's files (runfiles.py says how a schema reads).
ESTIMATE = Obj({"value": float, "low": float, "high": float}, {"method": str, "n": Count})
RATE_ESTIMATE = Obj({"value": Fraction, "low": Fraction, "high": Fraction}, {"method": str, "n": Count})
EVALUATION = Obj(
    {"n": Count, "accuracy": ESTIMATE, "macro_f1": ESTIMATE, "loss": ESTIMATE},
    {
        "labels": list[str],
        "confusion_matrix": list[list[Count]],
        "classification_report": dict[str, Any],
        "classification_report_text": str,
    },
)
EPOCH = Obj(
    {"epoch": Count, "train_loss": float}, {"step": Count, "validation_loss": float, "validation_accuracy": float}
)
METRICS = Obj(
    {"labels": list[str], "after": dict[str, EVALUATION]},  # type: ignore[valid-type]  # a schema, not a type
    {
        "schema_version": int,
        "task": str,
        "model": Obj(optional={"name": str | None, "requested": str, "fallback": bool, "peft": str}),
        "before": dict[str, EVALUATION],  # type: ignore[valid-type]
        "epochs": list[EPOCH],  # type: ignore[valid-type]
        "steps": list[dict[str, Any]],
        "best_epoch": Nullable(Count),
        "stopped_early": bool,
        "optimizer_steps": Count,
        "num_processes": Annotated[int, Between(1)],
        "notices": list[Obj({"level": str, "text": str})],  # type: ignore[misc]
    },
)
MODEL_INFO = Obj(
    optional={
        "name": str,
        "fallback": bool,
        "fallback_reason": str,
        "parameters_total": Nullable(Count),
        "parameters_trainable": Nullable(Count),
        "saved_bytes": Nullable(Count),
        "notes": list[str],
    }
)
DATA_CHECKS = Obj(
    optional={
        "source": str,
        "labels": list[str],
        "label_counts": dict[str, dict[str, Count]],
        "duplicates": Obj(
            {
                "exact_within_split": Count,
                "normalised_within_split": Count,
                "exact_across_splits": Count,
                "normalised_across_splits": Count,
            }
        ),
        "truncation": Obj({"max_length": Count, "truncated": dict[str, Count], "longest_tokens": Count}),
    }
)
ANALYSIS = Obj(optional={"schema_version": int, "analyzer": str})
PENDING = Obj({"analyzers": list[str]})
PREDICTION = Obj(
    {"text": str, "gold": str, "predicted": str, "probabilities": dict[str, float], "split": str}, {"id": Any}
)


@dataclass
class RunResults:
    directory: Path
    config: dict[str, Any]
    metrics: dict[str, Any]
    model_info: dict[str, Any]
    data_checks: dict[str, Any]
    analyses: dict[str, Any] = field(default_factory=dict)
    pending_analyses: list[str] = field(default_factory=list)  # live analyzers stopped before they finished

    @classmethod
    def load(cls, directory: Path) -> RunResults:
        directory = require_finished(directory)

        def read(name: str, schema: Any) -> dict[str, Any]:
            path = directory / name
            return read_json(path, schema) if path.exists() or path.is_symlink() else {}

        analyses = {p.stem: read_json(p, ANALYSIS) for p in sorted((directory / "analyses").glob("*.json"))}
        return cls(
            directory,
            read("config.json", dict[str, Any]),
            read("metrics.json", METRICS),
            read("model_info.json", MODEL_INFO),
            read("data_checks.json", DATA_CHECKS),
            analyses,
            read(PENDING_ANALYSES, PENDING).get("analyzers", []),
        )

    @property
    def name(self) -> str:
        """The name the user gave the run (`--name`), else its directory's name (time stamp and recipe): how
        compare, curves and reports label it."""
        name = self.config.get("name")
        return name if isinstance(name, str) and name else self.directory.name

    def analysis(self, name: str, schema: Any) -> Any:
        """analyses/NAME.json (None when the run has none), checked against the schema its analyzer keeps beside
        the code that writes it: every reader (report sections, findings) goes through here, so a damaged or
        hostile value is one message naming the file, the key and the fix, never a traceback in a reporter."""
        value = self.analyses.get(name)
        if value is not None:
            path = self.directory / "analyses" / f"{name}.json"
            check(value, schema, path, fix=self.rerun(name))
        return value

    def with_analyses(self, produced: dict[str, Any]) -> RunResults:
        """These results with freshly written analyses, struck from the pending list as run_analyzers strikes
        them on disk: what a report shows right after `mikiwame analyze`, without reading the run again."""
        pending = [n for n in self.pending_analyses if n not in produced]
        return replace(self, analyses={**self.analyses, **produced}, pending_analyses=pending)

    def rerun(self, analyzer: str) -> str:
        """The fix for a damaged analyses/NAME.json: computing it again from the run."""
        return f"re-run the analyzer: mikiwame analyze {self.directory} {analyzer}"

    def predictions(self) -> list[dict[str, Any]]:
        """predictions.jsonl, each row checked: a damaged one (or one whose text is longer than a run keeps:
        framework/limits.py) is one message naming the file and the row."""
        path = self.directory / "predictions.jsonl"
        rows = read_jsonl(path, PREDICTION)
        refuse_long_received_texts(rows, path)
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
            "pending_analyses": self.pending_analyses,
        }


def read_json_object(path: Path) -> dict[str, Any]:
    """A run's JSON object file (a model plugin's own record), read through the one validation layer."""
    return read_json(path, dict[str, Any])


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
