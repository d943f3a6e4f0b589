"""Running analyzer plugins on a saved run, live after training or later with `mikiwame analyze RUN_DIR`.

Analyzers see only what the run directory holds (config, metrics, predictions, the saved model), so a result
computed live and one computed a week later from the same directory are the same. They run on every process
(live: before the run's accelerator ends; `accelerate launch -m mikiwame.framework.cli analyze ...` too): the
predictor and the attributor split their batches across processes and gather, and the main process writes.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from accelerate import Accelerator

from .config import RunConfig
from .errors import ConfigError, MikiwameError
from .predict import RunPredictor, inference_accelerator
from .results import SCHEMA_VERSION, RunResults
from .rundir import write_pending_analyses
from .task import Example, TaskData

if TYPE_CHECKING:  # plugins.py types its registries with the Analyzer below
    from .plugins import PluginSet


class Analyzer(Protocol):
    """`analyze` returns JSON-serialisable data (never prints); a reporter renders it. Subclass it to inherit
    the defaults of the optional members."""

    name: str
    description: str
    needs_gradients: bool = False
    """True for an analyzer that attributes through the model's gradients: a run whose model has none (a
    fitted classifier) is told so before anything runs (or, live, before it trains)."""

    def analyze(self, context: AnalysisContext) -> dict[str, Any]: ...


@dataclass
class AnalysisContext:
    results: RunResults
    plugins: PluginSet
    options: dict[str, Any] = field(default_factory=dict)
    accelerator: Accelerator | None = None
    config: RunConfig | None = None  # the run's, typed, when the caller has it (the predictor then reads none)

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
        return RunPredictor(self.directory, self.plugins, self.accelerator, config=self.config)


def check_gradients(plugins: PluginSet, context: AnalysisContext, analyzers: list[Analyzer]) -> None:
    """One line, before anything runs, when an analyzer needs gradients the run's model does not have."""
    if any(a.needs_gradients for a in analyzers) and not context.predictor.has_gradients:
        refuse_without_gradients(plugins, analyzers, context.predictor.method)


def refuse_without_gradients(plugins: PluginSet, analyzers: list[Analyzer], model: str) -> None:
    """For a model without gradients (a fitted classifier, named `model`): one line naming the analyzers that
    need them and those that apply. A live run calls it before it trains, so nothing is fitted in vain."""
    needing = [a.name for a in analyzers if a.needs_gradients]
    if not needing:
        return
    usable = [e.name for e in plugins.analyzers if not e.item.needs_gradients]
    raise ConfigError(
        f"analyzer {', '.join(needing)} needs gradients, but this run's model ({model}) has none; analyzers "
        f"that apply to it: {', '.join(usable)}"
    )


def run_analyzers(
    plugins: PluginSet,
    run: Path | RunResults,
    names: list[str],
    options: dict[str, Any] | None = None,
    accelerator: Accelerator | None = None,
    *,
    device: str = "auto",
    mixed_precision: str | None = None,
) -> dict:
    """Run the named analyzers on every process (each computes the same result from gathered predictions);
    the main process writes RUN_DIR/analyses/NAME.json, and strikes NAME from the analyzers a live run left
    pending (rundir.PENDING_ANALYSES). Without the run's own `accelerator` (a later `mikiwame analyze`), one is
    made for the run's precision, or `device` / `mixed_precision` if given. `run`: the run directory, or its
    results when the caller loaded them (then nothing of the run is read twice)."""
    analyzers = [plugins.analyzers.get(name, option="--analyze") for name in names]
    results = run if isinstance(run, RunResults) else RunResults.load(run)
    config = RunConfig.from_values(results.config, plugins.option_types(), results.directory / "config.json")
    accelerator = accelerator or inference_accelerator(config, device, mixed_precision)
    context = AnalysisContext(results, plugins, options or {}, accelerator, config)
    check_gradients(plugins, context, analyzers)
    out_dir = context.results.directory / "analyses"
    out_dir.mkdir(exist_ok=True)  # analyzers save their figures there (each process the same bytes, atomically)
    produced = {}
    pending = results.pending_analyses
    for analyzer in analyzers:
        result = {
            "schema_version": SCHEMA_VERSION,
            "analyzer": analyzer.name,
            "num_processes": accelerator.num_processes,
            **analyzer.analyze(context),
        }
        produced[analyzer.name] = result
        if not accelerator.is_main_process:
            continue
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
        pending = [n for n in pending if n != analyzer.name]
        write_pending_analyses(results.directory, pending)
    return produced
