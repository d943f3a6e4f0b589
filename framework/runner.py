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
from typing import Any, cast

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import broadcast_object_list
from transformers.utils import logging as transformers_logging

from . import inert
from .analysis import refuse_without_gradients, run_analyzers
from .batching import EncodedTexts
from .checkpoint import Identity, complete_checkpoint
from .classifier import TextClassifier
from .config import RunConfig
from .datachecks import check_data
from .discussion import collect_findings, findings_section, localized_title, save_findings
from .engine import Engine, Predictions, fit_classifier, make_accelerator
from .errors import ConfigError, MikiwameError
from .findings import default_lang
from .limits import cut_task_data
from .metrics import summarize
from .models import LoadedModel, describe_model, load_model, quiet_transformers
from .peft_method import PeftMethod, write_method_file
from .plugins import PluginSet, build_plugin_set, chained
from .results import RunResults
from .rundir import RunDirectory, write_pending_analyses
from .signals import Terminated, stopping_cleanly
from .splits import subsample_train
from .task import SPLITS, TaskData
from .tokenization import tokenize_truncated

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
    tokenizer: Any = None  # the model's, once loaded: what a training objective needs to find words in a batch
    model: Any = None  # the model to fine-tune (not wrapped), once built: `before_train` may change it in place

    @property
    def is_main_process(self) -> bool:
        return self.accelerator.is_main_process


def resolve_peft(config: RunConfig, loaded: LoadedModel, plugins: PluginSet, notices: list[Notice]) -> PeftMethod:
    """`auto` is what the model's source suggests (e.g. LoRA on a pre-trained base, full fine-tuning on random
    weights, where LoRA learns little); a method that freezes a random base is warned about."""
    name = config.peft
    if name == "auto":
        if loaded.auto_peft is None:
            raise ConfigError(
                f"--peft auto: the model source {loaded.source!r} suggests no method",
                where="--peft",
                fix=f"name one: {', '.join(plugins.peft_methods.names())}",
            )
        name = loaded.auto_peft
        if loaded.auto_peft_reason:
            notices.append(Notice("info", loaded.auto_peft_reason))
    method = plugins.peft_methods.get(name, option="--peft")
    if not loaded.pretrained and not method.trains_every_weight and config.peft != "auto":
        notices.append(
            Notice(
                "warning",
                f"--peft {name} on a random-weight base: the frozen weights carry "
                "no knowledge, expect accuracy far below full fine-tuning",
            )
        )
    return method


def encode(tokenizer: Any, data: TaskData, split: str, max_length: int) -> tuple[EncodedTexts, list[int]]:
    """Tokenize once (fast path and disk cache: framework/tokenization.py), untruncated, so the data checks can
    say which texts lose tokens; then cut each too-long sequence to max_length."""
    examples = data.split(split)
    columns, lengths = tokenize_truncated(tokenizer, [e.text for e in examples], max_length)
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


def transform_data(plugins: PluginSet, config: RunConfig, data: TaskData) -> TaskData:
    """Plugins' data steps (`mikiwame_transform_data`), each applied to the previous one's result, in pluggy's
    call order (framework/plugins.py `chained`)."""
    for impl in chained(plugins.pm, "mikiwame_transform_data"):
        data = cast(TaskData | None, impl.function(config=config, data=data)) or data
    return data


def run(config: RunConfig, plugins: PluginSet | None = None) -> Path:
    """Train, evaluate, analyse and report one run; return its finished directory. The stages read as the
    architecture picture does: prepare (task, data, checks) -> fit (model, PEFT, engine) -> save (the run
    directory) -> analyzers -> reporters."""
    transformers_logging.disable_progress_bar()  # our reporter owns the terminal
    plugins = plugins or build_plugin_set()
    started_group = not (torch.distributed.is_available() and torch.distributed.is_initialized())
    run_ = prepare(config, plugins)
    accelerator, directory = run_.accelerator, run_.directory
    with reporters_listening(plugins):
        try:
            final = fit_and_save(run_)
            if config.analyze:  # on every process, on the run's device: analyzers shard their texts and gather
                run_analyzers(plugins, final, config.analyze, config.options, accelerator)
        except BaseException as err:
            if accelerator.is_main_process:
                note = directory.abandon(err)
                if note:
                    print(inert.visible(note), file=sys.stderr)
            raise
        finally:
            for tracker in accelerator.trackers:
                tracker.finish()
            if started_group:  # a caller that set up the process group before (several runs) ends it itself
                accelerator.state.destroy_process_group()
    if accelerator.is_main_process:
        results = RunResults.load(final)
        save_findings(plugins, results)
        sections = collect_sections(plugins, results, config.lang)
        for entry in plugins.reporters:
            if entry.item.live:
                entry.item.render(results, sections)
    return final


def prepare(config: RunConfig, plugins: PluginSet) -> Run:
    """Every name checked before anything heavy, the accelerator and the run directory's name, then the task's
    data: loaded, subsampled (`--train-size`), transformed by plugins, cut to the text limit (framework/limits.py:
    before any tokenizer runs MeCab) and checked."""
    task = plugins.tasks.get(config.task, option="--task")
    for name in config.analyze:
        plugins.analyzers.get(name, option="--analyze")
    if config.peft != "auto":
        plugins.peft_methods.get(config.peft, option="--peft")
    accelerator = make_accelerator(config, Path(config.output_dir))
    reserved = RunDirectory(Path(config.output_dir), config.recipe, name=config.name)
    directory: RunDirectory = broadcast_object_list([reserved])[0]
    data = task.load(config)
    if config.train_size is not None:
        data = subsample_train(data, config.train_size, config.split_seed)
    data, cut = cut_task_data(transform_data(plugins, config, data))
    checks = check_data(data, config)
    notices = [Notice("warning", w) for w in [*([cut] if cut else []), *checks.warnings]]
    if cut and accelerator.is_main_process:
        print(f"mikiwame: warning: {inert.visible(cut)}", file=sys.stderr)
    return Run(config, plugins, accelerator, data, directory, data_checks=checks.summary, notices=notices)


def fit_and_save(run_: Run) -> Path:
    """The model (a fine-tuned transformer through the engine, or a fitted classifier), its outputs written
    by the main process, and the run directory renamed to its final name, holding the list of live analyzers
    still to run (struck off as each finishes: a run stopped during them says so)."""
    config, acc = run_.config, run_.accelerator
    loaded = load_model(run_.plugins, config, run_.task_data)
    if isinstance(loaded, TextClassifier):
        analyzers = [run_.plugins.analyzers.get(name) for name in config.analyze]
        refuse_without_gradients(run_.plugins, analyzers, f"classifier:{loaded.source}")
    if isinstance(loaded, LoadedModel) and loaded.fallback:
        run_.notices.insert(
            0,
            Notice(
                "banner",
                f"OFFLINE FALLBACK: {config.model!r} could not be loaded ({loaded.fallback_reason}). This run uses "
                f"{loaded.name}, randomly initialised. Its figures say nothing about the requested model.",
            ),
        )
    outcome = _fit_classifier(run_, loaded) if isinstance(loaded, TextClassifier) else _fine_tune(run_, loaded)
    if acc.is_main_process:
        _write_outputs(run_, outcome)
    acc.wait_for_everyone()
    final = run_.directory.final
    if acc.is_main_process:
        write_pending_analyses(run_.directory.path, list(config.analyze))
        final = run_.directory.finish()
    return Path(broadcast_object_list([final])[0])


@dataclass
class Outcome:
    """What either path (engine fine-tuning or a fitted classifier) hands to the run-directory writer."""

    before: dict[str, Any]
    after: dict[str, Any]
    predictions: dict[str, Predictions]
    before_predictions: dict[str, Predictions] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    train_dynamics: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int | None = None
    kept_epoch: int | None = None
    stopped_early: bool = False
    optimizer_steps: int = 0
    method: str = ""


def _summary(run_: Run, intervals: bool) -> Any:
    labels, seed = run_.task_data.labels, run_.config.seed
    return lambda p: summarize(p.gold, p.predicted, p.losses, labels, intervals=intervals, seed=seed)


def _start_directory(run_: Run) -> None:
    """The main process reserves the directory's name (suffixed if another run holds it) and tells the others."""
    if run_.is_main_process:
        run_.directory.create()
        run_.config.save(run_.directory.path / "config.json")
    run_.directory = broadcast_object_list([run_.directory])[0]


def _fit_classifier(run_: Run, classifier: TextClassifier) -> Outcome:
    _start_directory(run_)
    fitted = fit_classifier(classifier, run_.task_data, run_.plugins.hook, run_, _summary(run_, True))
    if run_.is_main_process:
        model_dir = run_.directory.path / "model"
        classifier.save(model_dir)
        write_method_file(model_dir, f"classifier:{classifier.source}", None, run_.task_data.labels)
    return Outcome(before={}, after=fitted.after, predictions=fitted.predictions, method=classifier.source)


def _fine_tune(run_: Run, loaded: LoadedModel) -> Outcome:
    config, acc = run_.config, run_.accelerator
    method = resolve_peft(config, loaded, run_.plugins, run_.notices)
    if config.merge and method.merge is None:
        raise ConfigError(f"--merge needs a method that merges into the base; {method.name!r} does not")
    _check_max_length(config.max_length, loaded)
    resume = _resume_point(run_)
    _start_directory(run_)
    base_ref = _keep_base(run_, loaded, method)
    with quiet_transformers():  # peft's use of transformers' deprecated names is no business of the user's
        model = method.apply(loaded.model, config)
    run_.model_info = describe_model(loaded, model, method.name)
    lr = config.lr if config.lr is not None else method.default_lr(loaded.pretrained)
    run_.model_info["learning_rate"] = lr
    if loaded.lr_scales:
        run_.model_info["learning_rate_multipliers"] = loaded.lr_scales
    run_.tokenizer, run_.model = loaded.tokenizer, model
    splits = _encode_splits(run_, loaded.tokenizer)
    _start_trackers(run_)
    engine = Engine(
        config,
        acc,
        model,
        loaded.tokenizer,
        splits,
        lr=lr,
        hooks=run_.plugins.hook,
        run=run_,
        class_weights=_class_weights(splits["train"].labels, len(run_.task_data.labels), config.class_weights),
        checkpoint_dir=run_.directory.checkpoints,
        identity=Identity(
            run_.task_data.name,
            run_.task_data.labels,
            {n: list(p.shape) for n, p in model.named_parameters() if p.requires_grad},
        ),
        lr_scales=loaded.lr_scales,
    )
    fitted = engine.fit(_summary(run_, True), _summary(run_, False), resume=resume)
    if acc.is_main_process:
        _save_model(run_, acc.unwrap_model(engine.model), method, loaded.tokenizer, base_ref)
    progress = fitted.progress
    return Outcome(
        before=fitted.before,
        after=fitted.after,
        predictions=fitted.predictions,
        before_predictions=fitted.before_predictions,
        history=progress.history,
        steps=progress.step_history,
        train_dynamics=progress.train_dynamics,
        best_epoch=progress.best_epoch,
        kept_epoch=progress.kept_epoch,
        stopped_early=progress.stopped_early,
        optimizer_steps=progress.global_step,
        method=method.name,
    )


def _resume_point(run_: Run) -> Path | None:
    """`--resume`: the newest complete checkpoint at or before the one given (a damaged one is said)."""
    if not run_.config.resume:
        return None
    resume, note = complete_checkpoint(Path(run_.config.resume))
    if note:
        run_.notices.append(Notice("warning", note))
        if run_.is_main_process:
            print(f"mikiwame: {inert.visible(note)}", file=sys.stderr)
    return resume


def _keep_base(run_: Run, loaded: LoadedModel, method: PeftMethod) -> str | None:
    """A run is self-contained (docs/reliability.md): a base that is not a hub model is saved in the run when
    the method needs it to load; a method that saves every weight names no local base. Returns what
    model/peft.json names as the base."""
    base_ref = loaded.hub_id
    if base_ref is None and not method.trains_every_weight:
        base_ref = "base_model"
        if run_.is_main_process:
            loaded.model.save_pretrained(run_.directory.path / "base_model")
    return base_ref


def _encode_splits(run_: Run, tokenizer: Any) -> dict[str, EncodedTexts]:
    """Every split tokenized once; truncation recorded in the data checks and said when it happened."""
    config, data = run_.config, run_.task_data
    encoded = {s: encode(tokenizer, data, s, config.max_length) for s in SPLITS if data.split(s)}
    truncation = truncation_check({s: n for s, (_, n) in encoded.items()}, config.max_length)
    run_.data_checks["truncation"] = truncation
    if any(truncation["truncated"].values()):
        run_.notices.append(
            Notice(
                "warning",
                f"{sum(truncation['truncated'].values())} texts are longer than --max-length {config.max_length} "
                f"tokens and were truncated (longest: {truncation['longest_tokens']})",
            )
        )
    return {s: e for s, (e, _) in encoded.items()}


def _start_trackers(run_: Run) -> None:
    """`--report-to`: logs belong to the run, RUN_DIR/logs/mikiwame/ (`tensorboard --logdir runs` finds every run's)."""
    config, acc = run_.config, run_.accelerator
    if config.report_to:
        scalars = {k: v for k, v in config.to_dict().items() if isinstance(v, int | float | str | bool)}
        acc.project_configuration.logging_dir = str(run_.directory.path / "logs")
        acc.init_trackers("mikiwame", config=scalars)


def _save_model(run_: Run, trained: torch.nn.Module, method: PeftMethod, tokenizer: Any, base_ref: str | None) -> None:
    """model/ (the method's own files, the tokenizer, peft.json) and, with --merge, merged/."""
    directory, data = run_.directory, run_.task_data
    model_dir = directory.path / "model"
    method.save(trained, model_dir)
    run_.model_info["saved_bytes"] = sum(f.stat().st_size for f in model_dir.rglob("*") if f.is_file())
    tokenizer.save_pretrained(model_dir)
    write_method_file(model_dir, method.name, base_ref, data.labels)
    if run_.config.merge and method.merge is not None:
        method.merge(trained).save_pretrained(directory.path / "merged")
        tokenizer.save_pretrained(directory.path / "merged")


def _check_max_length(max_length: int, loaded: LoadedModel) -> None:
    """Refuse lengths the model cannot embed, and lengths that leave no room for the text itself."""
    positions = getattr(loaded.model.config, "max_position_embeddings", None)
    if positions is not None and max_length > positions:
        raise ConfigError(
            f"--max-length {max_length} is longer than the {positions} positions {loaded.name} can embed",
            fix=f"use --max-length {positions} or less",
        )
    special = loaded.tokenizer.num_special_tokens_to_add(pair=False)
    if max_length <= special:
        raise ConfigError(
            f"--max-length {max_length} leaves no room for text: the tokenizer adds {special} special tokens",
            fix=f"use --max-length {special + 1} or more (128 suits headlines)",
        )


def _class_weights(train_labels: list[int], num_labels: int, mode: str) -> torch.Tensor | None:
    """`balanced`: n / (k * count) per label, as scikit-learn computes it; labels absent from train get 1."""
    if mode != "balanced":
        return None
    present, counts = np.unique(np.asarray(train_labels), return_counts=True)
    weights = np.ones(num_labels)
    weights[present] = len(train_labels) / (len(present) * counts)
    return torch.tensor(weights, dtype=torch.float32)


def _write_outputs(run_: Run, outcome: Outcome) -> None:
    from . import plots  # matplotlib: a second of start-up that only a finished run's plots need

    config, data, directory = run_.config, run_.task_data, run_.directory
    with (directory.path / "predictions.jsonl").open("w", encoding="utf-8") as fh:
        for split, p in outcome.predictions.items():
            before = outcome.before_predictions.get(split)
            for i, (example, gold, pred, probs) in enumerate(
                zip(data.split(split), p.gold, p.predicted, p.probabilities, strict=True)
            ):
                record = {
                    "id": example.id,
                    "text": example.text,
                    "gold": data.labels[gold],
                    "predicted": data.labels[pred],
                    "probabilities": {label: round(float(q), 6) for label, q in zip(data.labels, probs, strict=True)},
                    "split": split,
                    **({"slices": dict(example.slices)} if example.slices else {}),
                }
                if before is not None:  # the paired before/after test (McNemar) of the findings reads it
                    record["predicted_before"] = data.labels[before.predicted[i]]
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    plots_dir = directory.path / "plots"
    plots_dir.mkdir(exist_ok=True)
    final_split = "test" if "test" in outcome.after else next(iter(outcome.after))
    no_font = plots.save_confusion_matrix(
        outcome.after[final_split]["confusion_matrix"],
        data.labels,
        plots_dir / "confusion_matrix.png",
        f"{final_split} after fine-tuning",
    )
    if no_font:
        run_.notices.append(Notice("warning", no_font))
        print(f"mikiwame: warning: {no_font}", file=sys.stderr)
    if outcome.history:
        plots.save_training_curves(outcome.history, plots_dir / "training_curves.png")
    if outcome.train_dynamics:
        train_ids = [e.id for e in data.split("train")]
        directory.write_json(
            "train_dynamics.json", {"schema_version": 1, "ids": train_ids, "epochs": outcome.train_dynamics}
        )
    directory.write_json("model_info.json", run_.model_info)
    directory.write_json("data_checks.json", run_.data_checks)
    directory.write_json("versions.json", {**versions(), "seed": config.seed})
    run_.metrics = _metrics(run_, outcome)
    directory.write_json("metrics.json", run_.metrics)


def _metrics(run_: Run, outcome: Outcome) -> dict[str, Any]:
    info, data = run_.model_info, run_.task_data
    return {
        "schema_version": 1,
        "task": data.name,
        "labels": data.labels,
        "model": {
            "name": info.get("name"),
            "requested": run_.config.model,
            "fallback": bool(info.get("fallback", False)),
            "pretrained": info.get("pretrained"),
            "peft": outcome.method,
        },
        "before": outcome.before,
        "after": outcome.after,
        "epochs": outcome.history,
        "steps": outcome.steps,
        "best_epoch": outcome.best_epoch,
        "kept_epoch": outcome.kept_epoch,
        "stopped_early": outcome.stopped_early,
        "optimizer_steps": outcome.optimizer_steps,
        "num_processes": run_.accelerator.num_processes,
        "notices": [n.__dict__ for n in run_.notices],
    }


def collect_sections(plugins: PluginSet, results: RunResults, lang: str | None = None) -> list[Any]:
    """Every plugin's sections, titled in `lang` (default: the locale's), after the findings (考察) section."""
    lang = lang or default_lang()
    sections = [s for group in plugins.hook.mikiwame_report_sections(results=results) if group for s in group]
    for section in sections:
        section.title = localized_title(section, lang)
    sections.append(findings_section(collect_findings(plugins, results), lang))
    return sorted(sections, key=lambda s: s.order)


@contextmanager
def user_errors_exit() -> Iterator[None]:
    """A user error becomes one clear message and exit status 2; Ctrl-C exits 130 and SIGTERM 143 (as shells
    report them), all without a traceback, a second signal during the cleanup included (framework/signals.py).
    What was kept on disk has been said already (RunDirectory.abandon)."""
    with stopping_cleanly():
        try:
            yield
        except MikiwameError as err:
            print(f"mikiwame: error: {inert.visible(err)}", file=sys.stderr)
            raise SystemExit(2) from None
        except KeyboardInterrupt:
            print("mikiwame: interrupted", file=sys.stderr)
            raise SystemExit(130) from None
        except Terminated:
            print("mikiwame: terminated (SIGTERM)", file=sys.stderr)
            raise SystemExit(143) from None


def run_guarded(config: RunConfig) -> Path:
    """For recipes: `run` under `user_errors_exit`."""
    with user_errors_exit():
        return run(config)
