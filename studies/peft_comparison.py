"""Comparing PEFT methods on one task under one budget: every training is an ordinary run (runner.run) in its
own process, so each method's peak memory is its own (RSS never goes down within a process); the learning rate
of each method is chosen on the validation split from a small grid with the first seed; the other seeds reuse
it. Returns a JSON-ready result; recipes/compare_peft.py renders it through studies/peft_comparison_report.py.

    python -m mikiwame.studies.peft_comparison WORKER_SPEC.json   # one measured run (used internally)
"""

from __future__ import annotations

import dataclasses
import json
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mikiwame.framework import hookimpl
from mikiwame.framework.config import RunConfig
from mikiwame.framework.errors import ConfigError
from mikiwame.framework.findings import adjust_p_values
from mikiwame.framework.models import load_model
from mikiwame.framework.plugins import PluginSet, build_plugin_set
from mikiwame.framework.results import RunResults
from mikiwame.framework.runner import run
from mikiwame.studies.paired import compare_paired

SCHEMA_VERSION = 1
SELECTION_METRIC = "macro_f1"
DEFAULT_GRID = "0.3x,1x,3x"


# ---------------------------------------------------------------- one measured run (in its own process)


class TrainingClock:
    """Times the training loop: from the end of the last before-training evaluation to after_train (steps,
    per-epoch validation and checkpoint writes), and keeps the before-training test predictions."""

    def __init__(self) -> None:
        self.start = self.end = 0.0
        self.before_test: list[int] = []

    @hookimpl
    def mikiwame_on_evaluate(self, run: Any, evaluation: Any) -> None:
        if evaluation.phase == "before":
            self.start = time.perf_counter()
            if evaluation.split == "test" and evaluation.predictions is not None:
                self.before_test = evaluation.predictions.predicted.tolist()

    @hookimpl
    def mikiwame_after_train(self, run: Any) -> None:
        self.end = time.perf_counter()


def measure(config: RunConfig, threads: int) -> dict[str, Any]:
    """Train and evaluate one run; what the comparison table needs from it."""
    torch.set_num_threads(threads)
    clock = TrainingClock()
    plugins = build_plugin_set(extra=[("training-clock", clock)])
    run_dir = run(config, plugins)
    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)  # for resuming unfinished runs; a full model each
    results = RunResults.load(run_dir)
    metrics, info = results.metrics, results.model_info
    records = results.predictions()
    test = [r for r in records if r["split"] == "test"]
    labels = metrics["labels"]
    trained_examples = sum(r["split"] == "train" for r in records) * len(metrics["epochs"])
    seconds = clock.end - clock.start
    return {
        "run_dir": str(run_dir),
        "method": info["peft"],
        "lr": info["learning_rate"],
        "seed": config.seed,
        "pretrained": info["pretrained"],
        "parameters_trainable": info["parameters_trainable"],
        "parameters_total": info["parameters_total"],
        "saved_bytes": info["saved_bytes"],
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "peak_cuda_bytes": torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None,
        "train_seconds": seconds,
        "samples_per_second": trained_examples / seconds if seconds > 0 else None,
        "epochs": len(metrics["epochs"]),
        "validation": {k: metrics["after"]["validation"][k]["value"] for k in ("accuracy", "macro_f1")},
        "test": {k: metrics["after"]["test"][k]["value"] for k in ("accuracy", "macro_f1")},
        "before_test": {k: metrics["before"]["test"][k]["value"] for k in ("accuracy", "macro_f1")},
        "test_ids": [r["id"] for r in test],
        "test_correct": [r["gold"] == r["predicted"] for r in test],
        "before_test_correct": [labels[p] == r["gold"] for p, r in zip(clock.before_test, test, strict=True)],
    }


def _worker(spec_path: Path) -> None:
    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    result = measure(RunConfig(**spec["config"]), spec["threads"])
    Path(spec["out"]).write_text(json.dumps(result) + "\n", encoding="utf-8")


# ---------------------------------------------------------------- the comparison


@dataclass
class ComparisonPlan:
    base: RunConfig
    methods: list[str]
    seeds: int
    lr_grid: str = DEFAULT_GRID
    threads: int = 1


def parse_grid(spec: str) -> dict[str, list[str]]:
    """`0.3x,1x,3x;soft prompt=1e-2,3e-2,1e-1;full=1e-4,1e-3`: a default grid, then per-method or per-family
    grids. `Nx` is N times the method's own default learning rate; a plain number is absolute."""
    grids: dict[str, list[str]] = {}
    for i, part in enumerate(p.strip() for p in spec.split(";") if p.strip()):
        name, _, values = part.rpartition("=") if "=" in part else ("", "", part)
        if not name and i > 0:
            raise ConfigError(f"--lr-grid part {part!r} names no method or family", fix="write NAME=v1,v2")
        items = [v.strip() for v in values.split(",") if v.strip()]
        for v in items:
            try:
                positive = float(v[:-1] if v.endswith("x") else v) > 0
            except ValueError:
                positive = False
            if not positive:
                raise ConfigError(
                    f"--lr-grid value {v!r} is neither a positive number nor a multiple like 3x", where="--lr-grid"
                )
        grids[name.strip() or "*"] = items
    grids.setdefault("*", DEFAULT_GRID.split(","))
    return grids


def learning_rates(grids: dict[str, list[str]], method: Any, pretrained: bool) -> list[float]:
    values = grids.get(method.name) or grids.get(method.family) or grids["*"]
    default = method.default_lr(pretrained)
    return sorted({float(v[:-1]) * default if v.endswith("x") else float(v) for v in values})


def _run_worker(config: RunConfig, threads: int, work: Path, name: str) -> dict[str, Any]:
    spec, out, log = work / f"{name}.spec.json", work / f"{name}.result.json", work / f"{name}.log"
    spec.write_text(json.dumps({"config": config.to_dict(), "threads": threads, "out": str(out)}), encoding="utf-8")
    started = time.perf_counter()
    with log.open("w", encoding="utf-8") as fh:
        done = subprocess.run(
            [sys.executable, "-m", "mikiwame.studies.peft_comparison", str(spec)], stdout=fh, stderr=subprocess.STDOUT
        )
    if done.returncode != 0 or not out.is_file():
        tail = "".join(log.read_text(encoding="utf-8").splitlines(keepends=True)[-15:])
        raise ConfigError(f"the run {name} failed (exit {done.returncode}); end of {log}:\n{tail}")
    result = json.loads(out.read_text(encoding="utf-8"))
    result["wall_seconds"] = time.perf_counter() - started
    return result


def compare(plan: ComparisonPlan, directory: Path, plugins: PluginSet | None = None, progress: Any = None) -> dict:
    """Run the plan; `progress(message)` is told before each training (the recipe's reporter prints it)."""
    plugins = plugins or build_plugin_set()
    methods = [plugins.peft_methods.get(m, option="--methods") for m in plan.methods]
    grids = parse_grid(plan.lr_grid)
    task = plugins.tasks.get(plan.base.task, option="--task")
    pretrained = load_model(plugins, plan.base, task.load(plan.base)).pretrained
    work = directory / "work"
    work.mkdir(parents=True, exist_ok=True)
    seeds = [plan.base.seed + i for i in range(plan.seeds)]
    rows = []
    for method in methods:
        grid = learning_rates(grids, method, pretrained)

        def train(lr: float, seed: int, method=method) -> dict[str, Any]:
            name = f"{method.name}-lr{lr:.2g}-seed{seed}"
            if progress:
                progress(f"training {name}")
            config = dataclasses.replace(
                plan.base,
                recipe=f"compare_peft-{name}",
                peft=method.name,
                lr=lr,
                seed=seed,
                output_dir=str(directory / "runs"),
                analyze=[],
            )
            return _run_worker(config, plan.threads, work, name)

        tried = [train(lr, seeds[0]) for lr in grid]
        best = max(tried, key=lambda r: r["validation"][SELECTION_METRIC])  # ties: the smaller LR
        runs = [best] + [train(best["lr"], seed) for seed in seeds[1:]]
        rows.append(_summarise(method, grid, tried, runs))
    _add_paired_tests(rows)
    return {
        "schema_version": SCHEMA_VERSION,
        "task": plan.base.task,
        "model": plan.base.model,
        "pretrained": pretrained,
        "config": plan.base.to_dict(),
        "seeds": seeds,
        "lr_grid": plan.lr_grid,
        "selection": f"validation {SELECTION_METRIC} with seed {seeds[0]}",
        "test_n": len(rows[0]["runs"][0]["test_correct"]) if rows else 0,
        "methods": rows,
    }


def _mean_std(values: list[float]) -> dict[str, float]:
    v = np.asarray(values, dtype=np.float64)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if v.size > 1 else 0.0, "n": int(v.size)}


def _summarise(method: Any, grid: list[float], tried: list[dict], runs: list[dict]) -> dict[str, Any]:
    first = runs[0]
    return {
        "method": method.name,
        "family": method.family,
        "lr": first["lr"],
        "lr_grid": grid,
        "lr_search": [{"lr": r["lr"], "validation": r["validation"]} for r in tried],
        "parameters_trainable": first["parameters_trainable"],
        "parameters_total": first["parameters_total"],
        "trainable_percent": 100 * first["parameters_trainable"] / first["parameters_total"],
        "saved_bytes": first["saved_bytes"],
        "peak_rss_bytes": _mean_std([r["peak_rss_bytes"] for r in runs]),
        "peak_cuda_bytes": _mean_std([r["peak_cuda_bytes"] for r in runs]) if first["peak_cuda_bytes"] else None,
        "samples_per_second": _mean_std([r["samples_per_second"] for r in runs]),
        "wall_seconds": _mean_std([r["wall_seconds"] for r in runs]),
        **{
            f"{split}_{metric}": _mean_std([r[split][metric] for r in runs])
            for split in ("validation", "test", "before_test")
            for metric in ("accuracy", "macro_f1")
        },
        "runs": runs,
    }


def _add_paired_tests(rows: list[dict[str, Any]]) -> None:
    """Each method against the best one (by mean test accuracy) and against itself before training, on the same
    test texts; p-values Benjamini-Hochberg adjusted within each family of comparisons."""
    if not rows:
        return
    for row in rows:
        ids = {tuple(r["test_ids"]) for r in row["runs"]}
        if len(ids) != 1 or ids != {tuple(rows[0]["runs"][0]["test_ids"])}:
            raise ConfigError("runs of the comparison saw different test texts; the paired tests need the same ones")
    best = max(rows, key=lambda r: r["test_accuracy"]["mean"])

    def correct(row: dict[str, Any], key: str) -> np.ndarray:
        return np.asarray([r[key] for r in row["runs"]], dtype=bool)

    for row in rows:
        row["vs_best"] = {
            "reference": best["method"],
            **compare_paired(correct(row, "test_correct"), correct(best, "test_correct")).to_dict(),
        }
        row["vs_before"] = compare_paired(correct(row, "test_correct"), correct(row, "before_test_correct")).to_dict()
    for key in ("vs_best", "vs_before"):
        adjusted = adjust_p_values([row[key]["mcnemar_p"] for row in rows])
        for row, q in zip(rows, adjusted, strict=True):
            row[key]["mcnemar_p_adjusted"] = q


if __name__ == "__main__":
    _worker(Path(sys.argv[1]))
