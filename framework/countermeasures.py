"""`mikiwame countermeasures RUN_DIR`: every registered countermeasure against the findings of a finished run
that it addresses, each re-run of the run's own configuration once per seed without (the baseline) and with
the cure, and the paired evidence of whether it worked (RUN_DIR/countermeasures/summary.json).

Each re-run is an ordinary run directory under RUN_DIR/countermeasures/ (baseline/seed-S/, NAME/FINDING/seed-S/):
a finished one is reused, so repeating the command re-runs nothing. Under `accelerate launch` every re-run and
every re-prediction uses every process; the main process writes the summary.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from accelerate import PartialState
from accelerate.utils import parse_flag_from_env

from . import paired
from .config import RunConfig
from .countermeasure import ANALYSIS_FIGURE, Countermeasure, Target
from .errors import ConfigError
from .plugins import PluginSet
from .predict import RunPredictor
from .registry import Registry
from .results import Reporter, RunResults
from .rundir import require_finished
from .unit_edits import delete_unit, holds_unit, insert_unit, usual_place

SCHEMA_VERSION = 1
FOLDER = "countermeasures"
SUMMARY = "summary.json"
SHIFT_SET = "shift-set accuracy"
DELETION_FLIPS = "deletion flip rate"
LOSS_RISE = "validation-loss rise"
WORST_RECALL = "worst-label recall"
LOWER_IS_BETTER = {DELETION_FLIPS, LOSS_RISE}


@dataclass(frozen=True)
class Treatment:
    """One countermeasure against one finding: its runs' configs, one per seed."""

    countermeasure: Countermeasure
    target: Target
    folder: Path


@dataclass
class Plan:
    run_dir: Path
    config: RunConfig
    seeds: list[int]
    treatments: list[Treatment]

    @property
    def root(self) -> Path:
        return self.run_dir / FOLDER

    def baseline_configs(self) -> list[RunConfig]:
        analyzers = sorted({t.target.analyzer for t in self.treatments if t.target.metric == ANALYSIS_FIGURE})
        return [self._seeded(self.config, s, self.root / "baseline", analyzers) for s in self.seeds]

    def treated_configs(self, treatment: Treatment) -> list[RunConfig]:
        target = treatment.target
        analyzers = [target.analyzer] if target.metric == ANALYSIS_FIGURE else []
        treated = treatment.countermeasure.apply(self.config, target)
        return [self._seeded(treated, s, treatment.folder, analyzers) for s in self.seeds]

    @staticmethod
    def _seeded(config: RunConfig, seed: int, folder: Path, analyzers: list[str]) -> RunConfig:
        return dataclasses.replace(
            config,
            seed=seed,
            data_seed=config.split_seed,  # every re-run on the run's own split and training texts: paired
            output_dir=str(folder / f"seed-{seed}"),
            analyze=analyzers,
            resume=None,
        )


def plan(run_dir: Path, plugins: PluginSet, only: list[str] | None, seeds: int) -> Plan:
    """What to run: each countermeasure (those named in `only`, else every one) against each finding its
    analyzer's saved result holds."""
    run_dir = require_finished(run_dir)
    if seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {seeds}", where="mikiwame countermeasures")
    registry: Registry[Countermeasure] = plugins.countermeasures
    for name in only or []:
        registry.get(name, option="--only")
    results = RunResults.load(run_dir)
    saved = RunConfig.load(run_dir / "config.json", plugins.option_types())
    processes = process_state().num_processes
    config = same_global_batches(saved, int(results.metrics.get("num_processes", 1)), processes)
    treatments = []
    for entry in registry:
        cure = entry.item
        analysis = results.analyses.get(cure.analyzer)
        if (only and cure.name not in only) or analysis is None:
            continue
        for target in cure.targets(analysis, results):
            treatments.append(Treatment(cure, target, run_dir / FOLDER / cure.name / target.key))
    return Plan(run_dir, config, [config.seed + k for k in range(seeds)], treatments)


def process_state() -> PartialState:
    """The processes of `accelerate launch`, set up as the runs' Accelerator sets them up (a bare PartialState
    ignores ACCELERATE_USE_CPU and would leave each CPU process alone, every one of them the main one)."""
    return PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU"))


def same_global_batches(config: RunConfig, saved_processes: int, processes: int) -> RunConfig:
    """`config` with its per-process batch sizes set so that `processes` processes make the batches the run's
    own `saved_processes` made: the re-runs then train and evaluate as the run did, on any number of
    processes (the batch sampler gives N processes of batch b what 1 process of batch N*b sees)."""
    sizes = {}
    for name in ("batch_size", "eval_batch_size"):
        whole = getattr(config, name) * saved_processes
        if whole % processes:
            raise ConfigError(
                f"the run's {name.replace('_', '-')} of {whole} texts over its {saved_processes} process(es) "
                f"cannot be split evenly over {processes} processes",
                where="mikiwame countermeasures",
                fix=f"launch with a number of processes that divides {whole} (or with {saved_processes})",
            )
        sizes[name] = whole // processes
    return dataclasses.replace(config, **sizes)


def finished_run(output_dir: Path) -> Path | None:
    """The finished run directory a re-run left in its own folder (a partial one is hidden: `.NAME.partial`)."""
    if not output_dir.is_dir():
        return None
    done = sorted(p for p in output_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    return done[-1] if done else None


def execute(
    configs: list[RunConfig], plugins: PluginSet, advance: Callable[[], None], reused: list[Path] | None = None
) -> list[Path]:
    """Each config's finished run, training only those not finished yet; the ones found finished are appended
    to `reused` (the summary's count, so a repeated command shows it trained nothing)."""
    from .runner import run

    done = []
    for config in configs:
        found = finished_run(Path(config.output_dir))
        if found is not None and reused is not None:
            reused.append(found)
        done.append(found if found is not None else run(config, plugins))
        advance()
    return done


# ---------------------------------------------------------------- measurement


@dataclass
class TestSplit:
    """The test split of a set of runs (one per seed): gold labels and each run's predictions, same texts."""

    labels: list[str]
    texts: list[str]
    gold: np.ndarray
    predicted: np.ndarray  # (runs, n)

    @classmethod
    def of(cls, runs: list[Path]) -> TestSplit:
        rows = [[r for r in RunResults.load(d).predictions() if r["split"] == "test"] for d in runs]
        labels = RunResults.load(runs[0]).metrics["labels"]
        ids = [r["id"] for r in rows[0]]
        for d, rs in zip(runs, rows, strict=True):
            if [r["id"] for r in rs] != ids:
                raise ConfigError(f"run {d} was tested on other texts than {runs[0]}", fix="compare runs of one split")
        index = {label: k for k, label in enumerate(labels)}
        return cls(
            labels,
            [r["text"] for r in rows[0]],
            np.asarray([index[r["gold"]] for r in rows[0]]),
            np.asarray([[index[r["predicted"]] for r in rs] for rs in rows]),
        )

    @property
    def correct(self) -> np.ndarray:
        return self.predicted == self.gold


def _predicted(runs: list[Path], plugins: PluginSet, texts: list[str]) -> np.ndarray:
    """(runs, texts) predicted label ids of each run's saved model."""
    return np.stack([RunPredictor(d, plugins).probabilities(texts).argmax(-1).numpy() for d in runs])


def shortcut_figures(
    target: Target, split: TestSplit, train_texts: list[str], runs: dict[str, list[Path]], plugins: PluginSet
) -> dict[str, dict[str, Any]]:
    """The shift set (test texts of the other labels with the unit inserted where it usually stands in the
    training texts: the group the shortcut misleads) and the whole-unit deletion flip rate (test texts that
    hold the unit, the unit deleted: how often the prediction changes)."""
    unit, own = target.detail["unit"], split.labels.index(target.detail["label"])
    place = usual_place(train_texts, unit)
    shifted = [i for i, g in enumerate(split.gold) if g != own and not holds_unit(split.texts[i], unit)]
    holding = [i for i, t in enumerate(split.texts) if holds_unit(t, unit)]
    shift_texts = [insert_unit(split.texts[i], unit, place) for i in shifted]
    deleted = [delete_unit(split.texts[i], unit) for i in holding]
    figures = {}
    if shifted:
        gold = split.gold[shifted]
        right = {side: _predicted(ds, plugins, shift_texts) == gold for side, ds in runs.items()}
        figures[SHIFT_SET] = paired.paired_difference(
            paired.accuracy_of(right["baseline"]), paired.accuracy_of(right["after"]), len(shifted)
        )
    if holding:
        flips = {
            side: _predicted(ds, plugins, deleted) != _predicted(ds, plugins, [split.texts[i] for i in holding])
            for side, ds in runs.items()
        }
        figures[DELETION_FLIPS] = paired.paired_difference(
            paired.accuracy_of(flips["baseline"]), paired.accuracy_of(flips["after"]), len(holding)
        )
    return figures


def loss_rise(run: Path) -> tuple[float, float]:
    """(rise of validation loss from its minimum to the last epoch, the minimum) of one run."""
    losses = [e["validation_loss"] for e in RunResults.load(run).metrics.get("epochs", []) if "validation_loss" in e]
    if not losses:
        raise ConfigError(f"run {run} has no validation losses", fix="give the task a validation split")
    return losses[-1] - min(losses), min(losses)


def analysis_figure(run: Path, target: Target) -> float:
    value: Any = RunResults.load(run).analyses[target.analyzer]
    for key in target.detail["figure"]:
        value = value[key]
    return float(value)


def target_figures(
    target: Target, baseline: TestSplit, after: TestSplit, runs: dict[str, list[Path]], plugins: PluginSet
) -> dict[str, dict[str, Any]]:
    """The target figure(s) of a finding, the first one the verdict is read from."""
    if target.metric == SHIFT_SET:
        train = [r["text"] for r in RunResults.load(runs["baseline"][0]).predictions() if r["split"] == "train"]
        return shortcut_figures(target, baseline, train, runs, plugins)
    if target.metric == LOSS_RISE:
        rises = {side: [loss_rise(d) for d in ds] for side, ds in runs.items()}
        return {
            LOSS_RISE: paired.per_seed_difference([r for r, _ in rises["baseline"]], [r for r, _ in rises["after"]]),
            "best validation loss": paired.per_seed_difference(
                [m for _, m in rises["baseline"]], [m for _, m in rises["after"]]
            ),
        }
    if target.metric == WORST_RECALL:
        k = len(baseline.labels)
        return {
            WORST_RECALL: paired.paired_difference(
                paired.worst_recall_of(baseline.gold, baseline.predicted, k),
                paired.worst_recall_of(after.gold, after.predicted, k),
                len(baseline.gold),
            )
        }
    if target.metric == ANALYSIS_FIGURE:
        name = f"{target.analyzer}: {'.'.join(target.detail['figure'])}"
        values = {side: [analysis_figure(d, target) for d in ds] for side, ds in runs.items()}
        return {name: paired.per_seed_difference(values["baseline"], values["after"])}
    raise ConfigError(f"countermeasure target metric {target.metric!r} is not one mikiwame measures")


def _better(metric: str, target: Target) -> int:
    """+1 when a higher figure is better, -1 when lower is."""
    lower = metric in LOWER_IS_BETTER or (target.metric == ANALYSIS_FIGURE and target.detail.get("lower"))
    return -1 if lower else 1


def direction(figure: dict[str, Any], sign: int) -> int:
    """+1: better beyond the interval, -1: worse beyond it, 0: the interval holds no change."""
    low, high = figure["interval"]
    if low > 0 or high < 0:
        return sign if low > 0 else -sign
    return 0


def verdict(target: int, accuracy: int) -> str:
    """helps: the target figure improved beyond its interval and accuracy did not fall beyond its own; hurts:
    the target worsened, or accuracy fell with no gain on the target; otherwise no clear change."""
    if target > 0 and accuracy >= 0:
        return "helps"
    if target < 0 or (accuracy < 0 and target <= 0):
        return "hurts"
    return "no clear change"


def measure(
    plan_: Plan, treatment: Treatment, baseline_runs: list[Path], treated_runs: list[Path], plugins: PluginSet
) -> dict[str, Any]:
    """One row of the summary: accuracy and macro-F1 paired over texts and seeds, the target figure, verdict."""
    base, after = TestSplit.of(baseline_runs), TestSplit.of(treated_runs)
    n, k = len(base.gold), len(base.labels)
    accuracy = paired.paired_difference(paired.accuracy_of(base.correct), paired.accuracy_of(after.correct), n)
    macro_f1 = paired.paired_difference(
        paired.macro_f1_of(base.gold, base.predicted, k), paired.macro_f1_of(after.gold, after.predicted, k), n
    )
    runs = {"baseline": baseline_runs, "after": treated_runs}
    figures = target_figures(treatment.target, base, after, runs, plugins)
    (metric, main), *others = figures.items()
    cure = treatment.countermeasure
    return {
        "countermeasure": cure.name,
        "description": cure.description,
        "sources": list(cure.sources),
        "addresses": treatment.target.to_dict(),
        "runs": [_relative(d, plan_.root) for d in treated_runs],
        "accuracy": accuracy,
        "macro_f1": macro_f1,
        "target": {"metric": metric, **main},
        "also": [{"metric": m, **f} for m, f in others],
        "verdict": verdict(direction(main, _better(metric, treatment.target)), direction(accuracy, 1)),
    }


def _relative(path: Path, root: Path) -> str:
    return str(Path(path).resolve().relative_to(root.resolve()))


@contextmanager
def no_progress(total: int) -> Iterator[Callable[[], None]]:
    yield lambda: None


@contextmanager
def progress_bar(total: int) -> Iterator[Callable[[], None]]:
    """Runs done / to do (a finished run found on disk counts as done at once)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("countermeasure runs"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns) as bar:
        task = bar.add_task("runs", total=total)
        yield lambda: bar.advance(task)


def quiet(plugins: PluginSet) -> PluginSet:
    """The plugins without reporters: the re-runs print nothing (the progress bar is the one live display)."""
    return dataclasses.replace(plugins, reporters=Registry[Reporter]("reporter", Reporter))


def run_countermeasures(
    plan_: Plan, plugins: PluginSet, progress: Callable[[int], Any] = no_progress
) -> dict[str, Any]:
    """Train what is missing (the baseline first; every process takes part), measure every treatment and
    return the summary. `progress(total)` is a context manager yielding `advance()`."""
    total = len(plan_.seeds) * (1 + len(plan_.treatments))
    runs_plugins, reused = quiet(plugins), list[Path]()
    with progress(total) as advance:
        baseline = execute(plan_.baseline_configs(), runs_plugins, advance, reused)
        treated = [execute(plan_.treated_configs(t), runs_plugins, advance, reused) for t in plan_.treatments]
    rows = [measure(plan_, t, baseline, runs, plugins) for t, runs in zip(plan_.treatments, treated, strict=True)]
    return {
        "schema_version": SCHEMA_VERSION,
        "run": str(plan_.run_dir),
        "seeds": plan_.seeds,
        "baseline": {"runs": [_relative(d, plan_.root) for d in baseline]},
        "rows": rows,
        "trained": total - len(reused),
        "reused": len(reused),
    }


def write_summary(summary: dict[str, Any], root: Path) -> Path:
    """summary.json and its plot (countermeasures.png) in RUN_DIR/countermeasures/."""
    from . import plots  # matplotlib, only to draw

    path = root / SUMMARY
    root.mkdir(parents=True, exist_ok=True)
    if summary["rows"]:
        plots.save_countermeasure_effects(summary["rows"], root / "countermeasures.png")
    path.write_text(json.dumps(summary, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path


def command(run_dir: Path, plugins: PluginSet, only: list[str] | None, seeds: int, show: bool) -> Path | None:
    """`mikiwame countermeasures`: plan, run (with a progress bar when `show`), write the summary (main
    process); returns its path, None on the other processes. Under `accelerate launch` the process group
    is set up before the first re-run and ended after the last, so every re-run uses every process."""
    plan_ = plan(run_dir, plugins, only, seeds)
    if not plan_.treatments:
        raise ConfigError(
            f"no finding of {plan_.run_dir} is addressed by a countermeasure"
            + (f" among {', '.join(only)}" if only else ""),
            where="mikiwame countermeasures",
            fix="analyze the run first (mikiwame analyze RUN_DIR shortcuts,curves,errors,entity-bias); "
            "docs/countermeasures.md says which finding each countermeasure needs",
        )
    state = process_state()  # set up by `plan`: the process group outlives each run (runner.run leaves it)
    summary = run_countermeasures(plan_, plugins, progress_bar if show and state.is_main_process else no_progress)
    written = write_summary(summary, plan_.root) if state.is_main_process else None
    state.destroy_process_group()
    return written
