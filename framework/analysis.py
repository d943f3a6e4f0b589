"""Running analyzer plugins on a saved run, live after training or later with `mikiwame analyze RUN_DIR`.

Analyzers see only what the run directory holds (config, metrics, predictions, the saved model), so a result
computed live and one computed a week later from the same directory are the same.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

from .errors import MikiwameError
from .plugins import PluginSet
from .predict import RunPredictor
from .results import SCHEMA_VERSION, RunResults
from .task import Example, TaskData


class Analyzer(Protocol):
    """`analyze` returns JSON-serialisable data (never prints); a reporter renders it."""

    name: str
    description: str

    def analyze(self, context: AnalysisContext) -> dict[str, Any]: ...


@dataclass
class AnalysisContext:
    results: RunResults
    plugins: PluginSet
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def directory(self) -> Path:
        return self.results.directory

    @cached_property
    def predictions(self) -> list[dict[str, Any]]:
        return self.results.predictions()

    @cached_property
    def task_data(self) -> TaskData:
        """The run's examples, rebuilt from predictions.jsonl (every split, in the run's order)."""
        examples = [Example(p["id"], p["text"], p["gold"], p["split"]) for p in self.predictions]
        return TaskData(
            self.results.metrics.get("task", ""), examples, str(self.directory), list(self.results.metrics["labels"])
        )

    def held_out_examples(self, limit: int) -> list[Example]:
        """Validation and test examples (the training split when a run has neither), a seeded sample of at most
        `limit`: what analyzers that perturb or attribute every text evaluate on, within a time budget."""
        data = self.task_data
        evaluated = [e for e in data.examples if e.split in ("validation", "test")] or data.split("train")
        if len(evaluated) > limit:
            evaluated = random.Random(int(self.results.config.get("seed", 0))).sample(evaluated, limit)
        return evaluated

    @cached_property
    def predictor(self) -> RunPredictor:
        """The saved model, loaded once, for analyzers that predict afresh (perturbations, attribution)."""
        return RunPredictor(self.directory, self.plugins)


def run_analyzers(plugins: PluginSet, run_dir: Path, names: list[str], options: dict[str, Any] | None = None) -> dict:
    analyzers = [plugins.analyzers.get(name, option="--analyze") for name in names]
    context = AnalysisContext(RunResults.load(run_dir), plugins, options or {})
    out_dir = context.results.directory / "analyses"
    out_dir.mkdir(exist_ok=True)
    produced = {}
    for analyzer in analyzers:
        result = {"schema_version": SCHEMA_VERSION, "analyzer": analyzer.name, **analyzer.analyze(context)}
        target = out_dir / f"{analyzer.name}.json"
        partial = target.with_suffix(".json.partial")
        try:
            partial.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        except TypeError as err:
            partial.unlink(missing_ok=True)
            raise MikiwameError(
                f"analyzer {analyzer.name!r} returned data that is not JSON-serialisable: {err}",
                fix="return dicts, lists, strings and numbers only",
            ) from None
        os.replace(partial, target)
        produced[analyzer.name] = result
    return produced
