"""One run, in the order of the data-flow picture (docs/architecture.md):
config -> plugins -> task -> model/tokenizer -> PEFT -> engine -> predictions -> analyzers -> results -> reporters.
"""

from __future__ import annotations

import json
import platform
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import broadcast_object_list
from sklearn.utils.class_weight import compute_class_weight
from transformers.utils import logging as transformers_logging

from . import plots
from .batching import EncodedTexts
from .config import RunConfig
from .datachecks import check_data
from .engine import Engine, Predictions, make_accelerator
from .errors import ConfigError, MikiwameError
from .metrics import summarize
from .models import LoadedModel, describe_model, load_model
from .peft_method import write_method_file
from .plugins import PluginSet, build_plugin_set
from .results import RunResults
from .rundir import RunDirectory
from .splits import subsample_train
from .task import SPLITS, TaskData

VERSIONED = ("mikiwame", "torch", "transformers", "accelerate", "peft", "scikit-learn", "fugashi", "unidic-lite")


@dataclass
class Notice:
    level: str  # "banner", "warning" or "info"
    text: str


@dataclass
class Run:
    """What hooks receive: everything known about the run so far."""

    config: RunConfig
    plugins: PluginSet
    accelerator: Accelerator
    task_data: TaskData
    directory: RunDirectory
    model_info: dict[str, Any] = field(default_factory=dict)
    data_checks: dict[str, Any] = field(default_factory=dict)
    notices: list[Notice] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def is_main_process(self) -> bool:
        return self.accelerator.is_main_process


def resolve_peft(config: RunConfig, loaded: LoadedModel, notices: list[Notice]) -> str:
    """`auto` is LoRA on a pre-trained base and full fine-tuning on random weights, where LoRA learns little."""
    if config.peft == "auto":
        if loaded.pretrained:
            return "lora"
        notices.append(
            Notice(
                "info",
                "the base model has random weights, so this run uses full fine-tuning "
                "(LoRA on a frozen random base learns little); --peft lora forces LoRA",
            )
        )
        return "full"
    if not loaded.pretrained and config.peft not in ("full",):
        notices.append(
            Notice(
                "warning",
                f"--peft {config.peft} on a random-weight base: the frozen weights carry "
                "no knowledge, expect accuracy far below full fine-tuning",
            )
        )
    return config.peft


def encode(tokenizer: Any, data: TaskData, split: str, max_length: int) -> tuple[EncodedTexts, list[int]]:
    """Tokenize once, untruncated, so the data checks can say which texts lose tokens; then cut each too-long
    sequence to max_length keeping its final [SEP], as the tokenizer's own truncation does."""
    examples = data.split(split)
    enc = tokenizer([e.text for e in examples])
    lengths = [len(ids) for ids in enc["input_ids"]]
    columns = {
        k: [seq if len(seq) <= max_length else seq[: max_length - 1] + seq[-1:] for seq in v] for k, v in enc.items()
    }
    label2id = data.label2id
    return EncodedTexts(columns, [label2id[e.label] for e in examples]), lengths


def truncation_check(lengths: dict[str, list[int]], max_length: int) -> dict[str, Any]:
    return {
        "max_length": max_length,
        "truncated": {s: sum(n > max_length for n in ls) for s, ls in lengths.items()},
        "longest_tokens": max(max(ls) for ls in lengths.values()),
    }


def versions() -> dict[str, str]:
    found = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


@contextmanager
def reporters_listening(plugins: PluginSet) -> Iterator[None]:
    """While a run lasts, every reporter is a plugin too, so it receives the engine moments."""
    names = []
    for entry in plugins.reporters:
        name = f"reporter:{entry.name}"
        if plugins.pm.get_plugin(name) is None:
            plugins.pm.register(entry.item, name=name)
            names.append(name)
    try:
        yield
    finally:
        for name in names:
            plugins.pm.unregister(name=name)


def run(config: RunConfig, plugins: PluginSet | None = None) -> Path:
    """Train, evaluate, analyse and report one run; return its finished directory."""
    transformers_logging.disable_progress_bar()  # our reporter owns the terminal
    plugins = plugins or build_plugin_set()
    task = plugins.tasks.get(config.task, option="--task")
    for name in config.analyze:
        plugins.analyzers.get(name, option="--analyze")
    if config.peft != "auto":
        plugins.peft_methods.get(config.peft, option="--peft")
    accelerator = make_accelerator(config)
    data = task.load(config)
    if config.train_size is not None:
        data = subsample_train(data, config.train_size, config.seed)
    checks = check_data(data, config)
    stamp = broadcast_object_list([RunDirectory(Path(config.output_dir), config.recipe)])[0]
    directory: RunDirectory = stamp
    with reporters_listening(plugins):
        run_ = Run(
            config,
            plugins,
            accelerator,
            data,
            directory,
            data_checks=checks.summary,
            notices=[Notice("warning", w) for w in checks.warnings],
        )
        try:
            final = _run_in_directory(run_)
        except BaseException as err:
            accelerator.end_training()
            if accelerator.is_main_process:
                note = directory.abandon(err)
                if note:
                    print(note, file=sys.stderr)
            raise
    if accelerator.is_main_process:
        results = RunResults.load(final)
        sections = collect_sections(plugins, results)
        for entry in plugins.reporters:
            if getattr(entry.item, "live", False):
                entry.item.render(results, sections)
    return final


def _run_in_directory(run_: Run) -> Path:
    config, plugins, acc, data, directory = run_.config, run_.plugins, run_.accelerator, run_.task_data, run_.directory
    main = acc.is_main_process
    loaded = load_model(plugins, config, data)
    if loaded.fallback:
        run_.notices.insert(
            0,
            Notice(
                "banner",
                f"OFFLINE FALLBACK: {config.model!r} could not be loaded "
                f"({loaded.fallback_reason}). This run uses {loaded.name}, "
                "randomly initialised. Its figures say nothing about the requested model.",
            ),
        )
    peft_name = resolve_peft(config, loaded, run_.notices)
    method = plugins.peft_methods.get(peft_name, option="--peft")
    if config.merge and not hasattr(method, "merge"):
        raise ConfigError(f"--merge needs a method that merges into the base; {peft_name!r} does not")
    if main:
        directory.create()
        config.save(directory.path / "config.json")
    acc.wait_for_everyone()
    base_ref: str | None = loaded.name
    if loaded.source != "transformers" and peft_name != "full" and main:
        loaded.model.save_pretrained(directory.path / "base_model")
        base_ref = "base_model"
    model = method.apply(loaded.model, config)
    run_.model_info = describe_model(loaded, model, peft_name)
    lr = config.lr if config.lr is not None else method.default_lr(loaded.pretrained)
    run_.model_info["learning_rate"] = lr
    encoded = {s: encode(loaded.tokenizer, data, s, config.max_length) for s in SPLITS if data.split(s)}
    splits = {s: e for s, (e, _) in encoded.items()}
    truncation = truncation_check({s: n for s, (_, n) in encoded.items()}, config.max_length)
    run_.data_checks["truncation"] = truncation
    if any(truncation["truncated"].values()):
        run_.notices.append(
            Notice(
                "warning",
                f"{sum(truncation['truncated'].values())} texts are longer than "
                f"--max-length {config.max_length} tokens and were truncated "
                f"(longest: {truncation['longest_tokens']})",
            )
        )
    weights = None
    if config.class_weights == "balanced":
        y = np.asarray(splits["train"].labels)
        present = np.unique(y)
        w = compute_class_weight("balanced", classes=present, y=y)
        full = np.ones(len(data.labels))
        full[present] = w
        weights = torch.tensor(full, dtype=torch.float32)
    acc.project_configuration.set_directories(str(directory.path))
    if config.report_to:
        acc.init_trackers(
            "mikiwame", config={k: v for k, v in config.to_dict().items() if isinstance(v, int | float | str | bool)}
        )
    engine = Engine(
        config,
        acc,
        model,
        loaded.tokenizer,
        splits,
        lr=lr,
        hooks=plugins.hook,
        run=run_,
        class_weights=weights,
        checkpoint_dir=directory.checkpoints,
    )

    def summary(intervals: bool):
        return lambda p: summarize(p.gold, p.predicted, p.losses, data.labels, intervals=intervals, seed=config.seed)

    evaluated = [s for s in ("validation", "test") if s in splits]
    plugins.hook.mikiwame_before_train(run=run_)
    before = {s: engine.evaluate(s, "before", None, summary(True))[1] for s in evaluated}
    progress = engine.train(summary(False), resume=config.resume)
    after_predictions: dict[str, Predictions] = {}
    after: dict[str, Any] = {}
    for s in splits:
        if s in evaluated:
            after_predictions[s], after[s] = engine.evaluate(s, "after", None, summary(True))
        else:
            after_predictions[s] = engine.predict(s)
    acc.end_training()
    if main:
        _write_run(run_, engine, loaded, method, peft_name, base_ref, before, after, progress, after_predictions)
    acc.wait_for_everyone()
    final = directory.final
    if main:
        final = directory.finish()
    return Path(broadcast_object_list([final])[0])


def _write_run(
    run_: Run,
    engine: Engine,
    loaded: LoadedModel,
    method: Any,
    peft_name: str,
    base_ref: str | None,
    before: dict,
    after: dict,
    progress: Any,
    predictions: dict[str, Predictions],
) -> None:
    config, data, directory = run_.config, run_.task_data, run_.directory
    model = engine.accelerator.unwrap_model(engine.model)
    model_dir = directory.path / "model"
    method.save(model, model_dir)
    loaded.tokenizer.save_pretrained(model_dir)
    write_method_file(model_dir, peft_name, base_ref, data.labels)
    if config.merge:
        merged_dir = directory.path / "merged"
        method.merge(model).save_pretrained(merged_dir)
        loaded.tokenizer.save_pretrained(merged_dir)
    with (directory.path / "predictions.jsonl").open("w", encoding="utf-8") as fh:
        for split, p in predictions.items():
            for example, gold, pred, probs in zip(data.split(split), p.gold, p.predicted, p.probabilities, strict=True):
                fh.write(
                    json.dumps(
                        {
                            "id": example.id,
                            "text": example.text,
                            "gold": data.labels[gold],
                            "predicted": data.labels[pred],
                            "probabilities": {
                                label: round(float(q), 6) for label, q in zip(data.labels, probs, strict=True)
                            },
                            "split": split,
                        },
                        ensure_ascii=False,
                    )
                    + "\n"
                )
    plots_dir = directory.path / "plots"
    plots_dir.mkdir(exist_ok=True)
    final_split = "test" if "test" in after else next(iter(after))
    plots.save_confusion_matrix(
        after[final_split]["confusion_matrix"],
        data.labels,
        plots_dir / "confusion_matrix.png",
        f"{final_split} after fine-tuning",
    )
    if progress.history:
        plots.save_training_curves(progress.history, plots_dir / "training_curves.png")
    directory.write_json("model_info.json", run_.model_info)
    directory.write_json("data_checks.json", run_.data_checks)
    directory.write_json("versions.json", {**versions(), "seed": config.seed})
    metrics = {
        "schema_version": 1,
        "task": data.name,
        "labels": data.labels,
        "model": {
            "name": loaded.name,
            "requested": config.model,
            "fallback": loaded.fallback,
            "pretrained": loaded.pretrained,
            "peft": peft_name,
        },
        "before": before,
        "after": after,
        "epochs": progress.history,
        "best_epoch": progress.best_epoch,
        "stopped_early": progress.stopped_early,
        "optimizer_steps": progress.global_step,
        "notices": [n.__dict__ for n in run_.notices],
    }
    run_.metrics = metrics
    directory.write_json("metrics.json", metrics)


def collect_sections(plugins: PluginSet, results: RunResults) -> list[Any]:
    sections = [s for group in plugins.hook.mikiwame_report_sections(results=results) if group for s in group]
    return sorted(sections, key=lambda s: s.order)


def run_guarded(config: RunConfig) -> Path:
    """For recipes: a user error becomes one clear message and exit status 2, never a traceback."""
    try:
        return run(config)
    except MikiwameError as err:
        print(f"mikiwame: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
