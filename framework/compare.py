"""`mikiwame compare RUN_A RUN_B [...]`: finished runs on the same test texts, the first against each other one,
paired text by text. Two runs scored on the same texts differ less by chance than their two accuracy intervals
suggest, and a course's "Level 1 vs Level 2" question is exactly this: accuracy by McNemar's exact test on the
discordant texts with a paired bootstrap interval of the difference, macro-F1 and per-class F1 with paired
bootstrap intervals (framework/paired.py, the one implementation), the configuration keys that differ, and the
outcome as findings (framework/findings.py decides fact or possibility). Computation only: compare_report.py
renders it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import paired
from .errors import ConfigError
from .findings import Claim, Evidence, Finding, conclude
from .results import RunResults

SCHEMA_VERSION = 1
SPLIT = "test"
SOURCE = "compare"
# Keys that say where or how a run was shown, not how it was trained: never a difference worth listing.
NOT_COMPARED = {"output_dir", "name", "lang", "resume"}


@dataclass(frozen=True)
class ComparedRun:
    """One finished run's test split as compare needs it: its predictions in the order of its test texts."""

    results: RunResults
    labels: list[str]
    keys: list[tuple[Any, str]]  # (id, text) of each test text, in order
    gold: list[str]
    predicted: list[str]

    @classmethod
    def of(cls, results: RunResults) -> ComparedRun:
        rows = [r for r in results.predictions() if r["split"] == SPLIT]
        if not rows:
            raise ConfigError(
                f"run {results.directory} has no {SPLIT} predictions in predictions.jsonl",
                where="mikiwame compare",
                fix="compare runs of a task with a test split (every built-in task has one)",
            )
        return cls(
            results,
            list(results.metrics["labels"]),
            [(r.get("id"), r["text"]) for r in rows],
            [r["gold"] for r in rows],
            [r["predicted"] for r in rows],
        )

    @property
    def directory(self) -> Path:
        return self.results.directory

    @property
    def name(self) -> str:
        return self.results.name


def require_same_texts(first: ComparedRun, other: ComparedRun) -> None:
    """A paired comparison needs the same texts with the same gold labels in the same order: say which runs and
    what differs (the number of texts, the first text that differs, a gold label, the label set) otherwise."""
    problem = None
    if sorted(first.labels) != sorted(other.labels):
        problem = f"the labels differ: {first.labels} vs {other.labels}"
    elif len(first.keys) != len(other.keys):
        problem = f"the number of {SPLIT} texts differs: {len(first.keys)} vs {len(other.keys)}"
    else:
        for k, (a, b) in enumerate(zip(first.keys, other.keys, strict=True)):
            if a != b:
                problem = f"{SPLIT} text {k + 1} differs: {a[1]!r} (id {a[0]}) vs {b[1]!r} (id {b[0]})"
                break
        else:
            wrong = [k for k, (a, b) in enumerate(zip(first.gold, other.gold, strict=True)) if a != b]
            if wrong:
                problem = f"{len(wrong)} gold labels differ, the first at {SPLIT} text {wrong[0] + 1}"
    if problem:
        raise ConfigError(
            f"runs {first.directory} and {other.directory} were not tested on the same texts: {problem}",
            where="mikiwame compare",
            fix="compare runs of the same task, data and split (the same --task, --data and --seed of the split; "
            "--train-size only subsamples training); retrain one of them on the other's data",
        )


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """`{"options": {"lora_r": 8}}` → `{"options.lora_r": 8}`: one row per setting in the differences table."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        elif f"{prefix}{key}" not in NOT_COMPARED:
            flat[f"{prefix}{key}"] = value
    return flat


def config_differences(runs: list[RunResults]) -> list[dict[str, Any]]:
    """The configuration keys (config.json flattened, and the model and PEFT method the run resolved to) whose
    values are not the same in every run; a key a run lacks is null for it."""
    flat = [{**flatten(r.config), **flatten(r.metrics.get("model", {}), "resolved.")} for r in runs]
    keys = sorted({k for f in flat for k in f})
    rows = []
    for key in keys:
        values = [f.get(key) for f in flat]
        if any(json.dumps(v, sort_keys=True) != json.dumps(values[0], sort_keys=True) for v in values):
            rows.append({"key": key, "values": values})
    return rows


def _figure(difference: dict[str, Any], a: str, b: str) -> dict[str, Any]:
    """paired_difference's baseline/after renamed to the runs' roles (a: the first run, b: the other)."""
    return {a: difference["baseline"], b: difference["after"], **{k: difference[k] for k in ("delta", "interval")}}


def accuracy_difference(correct_a: np.ndarray, correct_b: np.ndarray, seed: int = 0) -> dict[str, Any]:
    """`correct_*`: (seeds, n) booleans on the same texts, row i of both from the same seed. Accuracy b − a with
    a paired bootstrap interval over the texts (seeds averaged inside each resample), and McNemar's exact test
    on the first seed's discordant texts: the pairing compare, curves --compare and compare_peft share."""
    n = correct_a.shape[-1]
    difference = paired.paired_difference(paired.accuracy_of(correct_a), paired.accuracy_of(correct_b), n, seed)
    return {**difference, "mcnemar": paired.mcnemar(correct_a[0], correct_b[0])}


def pair(first: ComparedRun, other: ComparedRun) -> dict[str, Any]:
    """The first run against another on the same texts; every Δ is other − first."""
    index = {label: k for k, label in enumerate(first.labels)}
    gold = np.asarray([index[g] for g in first.gold])
    pred_a = np.asarray([[index[p] for p in first.predicted]])
    pred_b = np.asarray([[index[p] for p in other.predicted]])
    n, k = len(gold), len(first.labels)
    accuracy = accuracy_difference(pred_a == gold, pred_b == gold)
    macro_f1 = paired.paired_difference(paired.macro_f1_of(gold, pred_a, k), paired.macro_f1_of(gold, pred_b, k), n)
    per_class = [
        {
            "label": label,
            "n": int((gold == j).sum()),
            **_figure(
                paired.paired_difference(
                    paired.class_f1_of(gold, pred_a, k, j), paired.class_f1_of(gold, pred_b, k, j), n
                ),
                "a",
                "b",
            ),
        }
        for j, label in enumerate(first.labels)
    ]
    return {
        "a": first.name,
        "b": other.name,
        "n": n,
        "accuracy": {**_figure(accuracy, "a", "b"), "mcnemar": accuracy["mcnemar"]},
        "macro_f1": _figure(macro_f1, "a", "b"),
        "per_class_f1": per_class,
    }


def _decide_by(first: ComparedRun, other: ComparedRun) -> str:
    """More seeds of both configurations, each pair compared: what decides a difference within the noise."""
    reruns = " and ".join(
        f"accelerate launch recipes/{r.results.config.get('recipe', 'RECIPE')}.py --config {r.directory}/config.json "
        f"--seed {int(r.results.config.get('seed', 42)) + 1}"
        for r in (first, other)
    )
    return f"{reruns}, then mikiwame compare the two new runs (more seeds or a larger test split)"


def findings(first: ComparedRun, other: ComparedRun, result: dict[str, Any]) -> list[Finding]:
    """Accuracy (a fact only when both the paired interval and McNemar's test exclude no difference) and macro-F1
    (its paired interval). Per-class F1 stays a table: k labels tested at once without a test to correct."""
    a, b, n = first.name, other.name, result["n"]
    scope = f"{SPLIT} split, n={n}: {b} vs {a} (the same texts)"
    decide_by = _decide_by(first, other)
    acc, test = result["accuracy"], result["accuracy"]["mcnemar"]
    discordant = f"only {a} right: {test['only_a']}, only {b} right: {test['only_b']}"
    out = [
        conclude(
            _claim("正解率", "accuracy", a, b, acc),
            [
                Evidence("accuracy difference", acc["delta"], n, tuple(acc["interval"]), "paired bootstrap over texts"),
                Evidence(
                    "discordant texts (only the second right − only the first right)",
                    test["only_b"] - test["only_a"],
                    n,
                    test=f"McNemar exact ({discordant})",
                    p=test["p"],
                ),
            ],
            0.0,
            scope=scope,
            source=SOURCE,
            decide_by=decide_by,
        )
    ]
    f1 = result["macro_f1"]
    out.append(
        conclude(
            _claim("マクロF1", "macro-F1", a, b, f1),
            [Evidence("macro-F1 difference", f1["delta"], n, tuple(f1["interval"]), "paired bootstrap over texts")],
            0.0,
            scope=scope,
            source=SOURCE,
            decide_by=decide_by,
        )
    )
    return out


def _claim(metric_ja: str, metric_en: str, a: str, b: str, figure: dict[str, Any]) -> Claim:
    d = figure["delta"]
    low, high = figure["interval"]
    values = f"{figure['a']:.3f} → {figure['b']:.3f}, Δ {d:+.3f} [{low:+.3f}, {high:+.3f}]"
    up = d > 0
    return Claim(
        f"{b} の{metric_ja}は {a} より{'高い' if up else '低い'}（{values}）。",
        f"{b}'s {metric_en} is {'higher' if up else 'lower'} than {a}'s ({values}).",
        f"{b} と {a} の{metric_ja}には差がある可能性があるが、この差（{values}）は偶然の範囲を超えていない。",
        f"{b}'s {metric_en} may differ from {a}'s, but the difference ({values}) is within chance.",
    )


def compare(directories: list[Path]) -> dict[str, Any]:
    """The whole comparison as JSON-ready data (no NaN: every figure is measured on ≥ 1 text)."""
    if len(directories) < 2:
        raise ConfigError(
            f"compare needs at least two runs, got {len(directories)}",
            where="mikiwame compare",
            fix="mikiwame compare RUN_A RUN_B [RUN_C ...]: the first against each other one",
        )
    return compare_runs([ComparedRun.of(RunResults.load(Path(d))) for d in directories])


def compare_runs(runs: list[ComparedRun]) -> dict[str, Any]:
    """`compare` on runs already loaded (what `curves --compare` gives it: the analysed run and the others)."""
    first = runs[0]
    for other in runs[1:]:
        require_same_texts(first, other)
    comparisons = []
    for other in runs[1:]:
        result = pair(first, other)
        result["findings"] = [f.to_dict() for f in findings(first, other, result)]
        comparisons.append(result)
    return {
        "schema_version": SCHEMA_VERSION,
        "split": SPLIT,
        "runs": [{"name": r.name, "directory": str(r.directory)} for r in runs],
        "config_differences": config_differences([r.results for r in runs]),
        "comparisons": comparisons,
    }
