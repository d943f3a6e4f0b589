"""Every hook mikiwame calls. Built-in tasks, models, PEFT methods, analyzers and reporters use exactly
these; an outside plugin implements them with `@mikiwame.framework.hookimpl` (see docs/plugin_hooks.md)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:  # for the checker only: these modules import each other, and pluggy reads only the names
    import torch

    from .analysis import Analyzer
    from .config import RunConfig
    from .countermeasure import Countermeasure
    from .engine import Evaluation, StepEnd
    from .findings import Finding
    from .models import ModelSource
    from .peft_method import PeftMethod
    from .results import Reporter, ReportSection, RunResults
    from .runner import Run
    from .task import Task, TaskData

hookspec = pluggy.HookspecMarker("mikiwame")
hookimpl = pluggy.HookimplMarker("mikiwame")


@hookspec
def mikiwame_register_tasks(register: Callable[[Task], None]) -> None:
    """Called once when the plugin manager is built. Call `register(task)` for each task object (one with
    `name`, `description` and `load(config) -> TaskData`). Names must be unique across plugins."""


@hookspec
def mikiwame_register_models(register: Callable[[ModelSource], None]) -> None:
    """Called once when the plugin manager is built. Call `register(source)` for each model source (`name`,
    `description`, `load(config, task_data) -> LoadedModel`). `--model NAME` picks a registered source by
    name; any other value is a hub id or local directory for the `transformers` source."""


@hookspec
def mikiwame_register_peft_methods(register: Callable[[PeftMethod], None]) -> None:
    """Called once when the plugin manager is built. Call `register(method)` for each PEFT method (`name`,
    `family`, `default_lr`, `apply(model, config)`, `save(model, directory)`, `load(directory, base, labels)`)."""


@hookspec
def mikiwame_register_analyzers(register: Callable[[Analyzer], None]) -> None:
    """Called once when the plugin manager is built. Call `register(analyzer)` for each analyzer (`name`,
    `description`, `analyze(context) -> dict`, the context an `AnalysisContext`), chosen with `--analyze NAME,...`."""


@hookspec
def mikiwame_register_reporters(register: Callable[[Reporter], None]) -> None:
    """Called once when the plugin manager is built. Call `register(reporter)` for each reporter: an object
    with a `name`, a `live` flag and `render(results, sections)`, plus any hook implementations it wants
    (`mikiwame_before_train`, ...). While a run lasts, each reporter is itself registered as a plugin, so it
    receives the engine moments below; at the end of a run the `live` ones render the report.
    `mikiwame report RUN_DIR --format NAME` renders with the reporter of that name."""


@hookspec
def mikiwame_register_countermeasures(register: Callable[[Countermeasure], None]) -> None:
    """Called once when the plugin manager is built. Call `register(countermeasure)` for each countermeasure
    (`framework/countermeasure.py`: `name`, `description`, `analyzer`, `sources`, `targets(analysis, config)`,
    `apply(config, target)`), run by `mikiwame countermeasures RUN_DIR` against the findings it addresses."""


@hookspec
def mikiwame_options() -> type | None:
    """Called when a recipe builds its command line, for `mikiwame analyze` and when a saved config is read.
    Return a dataclass of this plugin's options (fields made with `framework.options.option`: default, help,
    choices): each field becomes `--field-name` on every recipe, its value is saved with the run in
    `config.options`, checked against the field's type when a config is read back, and read typed with
    `read_options(YourOptions, config.options)` (analyzers: `context.options`). Names are shared by all plugins:
    start each with the plugin's name or a name it registers (`--shortcuts-steps`; tests/test_option_names.py).
    A `validate()` method on the dataclass is called on every parse."""


@hookspec
def mikiwame_add_arguments(parser: argparse.ArgumentParser) -> None:
    """For what a dataclass field cannot say (`count`, `store_const`, `append`, ...): called after the typed
    options are added, with a parser that records each option's default. Values are stored in
    `config.options[dest]` like typed options'; prefer `mikiwame_options`."""


@hookspec
def mikiwame_transform_data(config: RunConfig, data: TaskData) -> TaskData | None:
    """Called once per run after the task loaded (and `--train-size` subsampled), before the data checks and
    the model (whose vocabulary may be built from the training texts). Return a new `TaskData` to replace the
    data (augmented training texts, masked entities, ...) or None to leave it. Implementations apply one
    after another, each seeing the previous one's result, in pluggy's call order (`tryfirst` first, then the
    last loaded first, `trylast` last); a wrapper is refused (it cannot wrap a chain of calls)."""


@hookspec
def mikiwame_before_train(run: Run) -> None:
    """Called once when everything is ready: model built, data checked, engine prepared; just before the
    evaluation before fine-tuning and the first training step. `run` is the `Run` (config, task data, model
    information, data checks, notices, accelerator). Return value ignored."""


@hookspec
def mikiwame_on_step_end(run: Run, step: StepEnd) -> None:
    """Called after every optimizer step (sync boundary) with a `StepEnd` (epoch, global step, total steps,
    loss, learning rate). Called on every process: check `run.is_main_process` before printing."""


@hookspec
def mikiwame_on_evaluate(run: Run, evaluation: Evaluation) -> None:
    """Called after each evaluation with an `Evaluation` (phase `before`/`step`/`epoch`/`after`, split, epoch,
    metrics: those of phases `before` and `after` with n and intervals, the quicker `step` and `epoch` ones
    without intervals). Return value ignored."""


@hookspec
def mikiwame_training_loss(
    run: Run, model: torch.nn.Module, inputs: dict[str, torch.Tensor], logits: torch.Tensor
) -> torch.Tensor | None:
    """Called for every training batch after the forward pass, on every process, with the model inputs
    (`input_ids`, `attention_mask`, ...) and their logits. Return a scalar tensor to add to the batch's
    cross-entropy (a training objective: a consistency term, a penalty) or None to add nothing. Keep it cheap:
    it runs in the hot loop."""


@hookspec
def mikiwame_after_train(run: Run) -> None:
    """Called once after training ended (early stopped or not) and, with early stopping or `--restore-best`, the
    best epoch's weights were restored (`--patience 0` alone keeps the last epoch's). For a model the engine
    trains this is before the evaluation after; for a classifier fitted outside it (`tfidf-lr`, ...), after."""


@hookspec
def mikiwame_report_sections(results: RunResults) -> list[ReportSection] | None:
    """Called when a report is rendered, live or by `mikiwame report RUN_DIR`, with the saved `RunResults`.
    Return a list of `ReportSection`s (or None); reporters render them in `order`."""


@hookspec
def mikiwame_findings(results: RunResults) -> list[Finding] | None:
    """Called when a run's findings (考察) are gathered: at the end of every run, by `mikiwame analyze` and by
    `mikiwame report`, with the saved `RunResults`. Return the `Finding`s this plugin draws from them, built with
    `framework.findings.conclude` (or `fact` / `possibility`), or None. Derive them from the saved figures only
    (`results.analyses`, `results.metrics`): a report re-derives them without recomputing. They are written to
    RUN_DIR/findings.json and shown first in every report, facts apart from possibilities (docs/findings.md)."""
