"""Evaluation figures, each with its n and a 95% interval: Wilson for accuracy, a paired bootstrap for
macro-F1 and mean loss. Computed with scikit-learn and scipy on gathered predictions, both imported where they
are used: they cost every command's start-up more than a second, and `predict` or an analyzer may never need them."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Annotated, Any

import numpy as np

from .runfiles import AnyOf, Between, Count, Fraction, Obj

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Estimate:
    value: float
    low: float
    high: float
    n: int
    method: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def wilson_interval(hits: int, n: int) -> tuple[float, float]:
    """The 95% Wilson interval of hits / n (n > 0): the interval of every rate mikiwame reports."""
    from scipy import stats

    ci = stats.binomtest(hits, n).proportion_ci(confidence_level=CONFIDENCE, method="wilson")
    return float(ci.low), float(ci.high)


def wilson(k: int, n: int) -> dict[str, Any]:
    """A rate with its 95% Wilson interval, in the shape analyzers save (`k`, `n`, `rate`, `low`, `high`; the
    figures None for n = 0)."""
    if n == 0:
        return {"k": 0, "n": 0, "rate": None, "low": None, "high": None}
    low, high = wilson_interval(k, n)
    return {"k": k, "n": n, "rate": k / n, "low": low, "high": high}


def mean_interval(values: Sequence[float], seed: int) -> dict[str, Any]:
    """A mean of per-text values with its 95% percentile bootstrap interval (999 resamples, seeded), in the shape
    analyzers save (`mean`, `low`, `high`, `n`). The evaluation's means are `mean_estimate` (1,000 resamples,
    an `Estimate`): saved analyses' figures were computed with this one, so the two stay apart."""
    from scipy import stats

    data = np.asarray(values, dtype=float)
    if len(data) < 2 or np.ptp(data) == 0:
        mean = float(data.mean()) if len(data) else None
        return {"mean": mean, "low": mean, "high": mean, "n": len(data)}
    ci = stats.bootstrap((data,), np.mean, n_resamples=999, method="percentile", random_state=seed)
    return {
        "mean": float(data.mean()),
        "low": float(ci.confidence_interval.low),
        "high": float(ci.confidence_interval.high),
        "n": len(data),
    }


def mcnemar_exact(correct_a: np.ndarray, correct_b: np.ndarray) -> tuple[int, int, float]:
    """Exact McNemar: under H0 a discordant text is equally likely to favour either classifier."""
    from scipy import stats

    a, b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    if only_a + only_b == 0:
        return only_a, only_b, 1.0
    return only_a, only_b, float(stats.binomtest(only_a, only_a + only_b, 0.5).pvalue)


def accuracy_estimate(gold: Sequence[int], predicted: Sequence[int]) -> Estimate:
    hits = int(np.sum(np.asarray(gold) == np.asarray(predicted)))
    n = len(gold)
    return Estimate(hits / n, *wilson_interval(hits, n), n, "wilson")


def bootstrap_estimate(
    data: tuple[np.ndarray, ...], statistic: Any, value: float, seed: int, vectorized: bool
) -> Estimate:
    from scipy import stats

    n = len(data[0])
    if n < 2 or all(np.all(d == d[0]) for d in data):
        return Estimate(value, value, value, n, "bootstrap")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # degenerate resamples are expected on very small or perfect data
        res = stats.bootstrap(
            data,
            statistic,
            paired=True,
            vectorized=vectorized,
            n_resamples=1000,
            confidence_level=CONFIDENCE,
            method="percentile",
            rng=np.random.default_rng(seed),
        )
    ci_low, ci_high = res.confidence_interval
    low = value if np.isnan(ci_low) else float(ci_low)
    high = value if np.isnan(ci_high) else float(ci_high)
    return Estimate(value, low, high, n, "bootstrap")


def class_f1_batched(num_labels: int) -> Any:
    """F1 of every label over a batch of bootstrap resamples at once, (..., num_labels): 2TP / (predicted + gold)
    per label, 0 where a label is absent from both (sklearn's zero_division=0)."""
    classes = np.arange(num_labels)

    def statistic(g: np.ndarray, p: np.ndarray, axis: int = -1) -> np.ndarray:
        g_hot = g[..., None] == classes
        p_hot = p[..., None] == classes
        tp = (g_hot & p_hot).sum(axis=-2)
        denominator = g_hot.sum(axis=-2) + p_hot.sum(axis=-2)
        return np.divide(2 * tp, denominator, out=np.zeros(denominator.shape), where=denominator > 0)

    return statistic


def macro_f1_batched(num_labels: int) -> Any:
    """Macro-F1 over a batch of bootstrap resamples at once (the mean of `class_f1_batched`). Measured: calling
    f1_score per resample cost ~1.5 s per evaluation; this is ~50x faster and agrees with f1_score
    (tests/test_metrics.py)."""
    per_class = class_f1_batched(num_labels)
    return lambda g, p, axis=-1: per_class(g, p).mean(axis=-1)


def macro_f1_estimate(gold: Sequence[int], predicted: Sequence[int], num_labels: int, seed: int = 0) -> Estimate:
    from sklearn.metrics import f1_score

    g, p = np.asarray(gold), np.asarray(predicted)
    value = float(f1_score(g, p, labels=list(range(num_labels)), average="macro", zero_division=0))
    return bootstrap_estimate((g, p), macro_f1_batched(num_labels), value, seed, vectorized=True)


def mean_estimate(values: Sequence[float], seed: int = 0) -> Estimate:
    v = np.asarray(values, dtype=np.float64)
    return bootstrap_estimate((v,), lambda x, axis=-1: np.mean(x, axis=axis), float(v.mean()), seed, vectorized=True)


def summarize(
    gold: Sequence[int],
    predicted: Sequence[int],
    losses: Sequence[float],
    label_names: Sequence[str],
    *,
    intervals: bool = True,
    seed: int = 0,
) -> dict[str, Any]:
    """Accuracy, macro-F1 and loss (with intervals when asked), sklearn's report and the confusion matrix."""
    from sklearn.metrics import classification_report, confusion_matrix, f1_score

    k = len(label_names)
    labels = list(range(k))
    acc = accuracy_estimate(gold, predicted)
    if intervals:
        f1 = macro_f1_estimate(gold, predicted, k, seed)
        loss = mean_estimate(losses, seed)
    else:
        f1_value = float(f1_score(gold, predicted, labels=labels, average="macro", zero_division=0))
        f1 = Estimate(f1_value, f1_value, f1_value, len(gold), "point")
        loss_value = float(np.mean(losses))
        loss = Estimate(loss_value, loss_value, loss_value, len(gold), "point")
    return {
        "n": len(gold),
        "accuracy": acc.to_dict(),
        "macro_f1": f1.to_dict(),
        "loss": loss.to_dict(),
        "classification_report": classification_report(
            gold, predicted, labels=labels, target_names=list(label_names), output_dict=True, zero_division=0
        ),
        "classification_report_text": aligned_report(
            classification_report(
                gold, predicted, labels=labels, target_names=list(label_names), digits=3, zero_division=0
            ),
            list(label_names),
        ),
        "confusion_matrix": confusion_matrix(gold, predicted, labels=labels).tolist(),
        "labels": list(label_names),
    }


def aligned_report(text: str, label_names: list[str]) -> str:
    """sklearn's text `classification_report` with its first column padded by display width: sklearn pads by
    characters, so a Japanese label (two terminal cells a character) pushes its row's figures out of line.
    sklearn's first column is as wide as the longest label name or "weighted avg" in characters."""
    from rich.cells import cell_len

    width = max(len(name) for name in [*label_names, "weighted avg"])
    rows = [(line[:width].strip(), line[width:]) for line in text.splitlines()]
    cells = max(cell_len(name) for name, _ in rows)
    return "\n".join(" " * (cells - cell_len(name)) + name + rest if name or rest else "" for name, rest in rows) + (
        "\n" if text.endswith("\n") else ""
    )


# What `wilson` and `mean_interval` write, as the analyses that hold them are read back (runfiles.py
# schemas): every analyzer's result schema uses them.
Empty = Annotated[int, Between(0, 0)]
NONE = type(None)
RATE = AnyOf(
    Obj({"k": Count, "n": Annotated[int, Between(1)], "rate": Fraction, "low": Fraction, "high": Fraction}),
    Obj({"k": Empty, "n": Empty, "rate": NONE, "low": NONE, "high": NONE}),
)
MEAN = AnyOf(
    Obj({"mean": float, "low": float, "high": float, "n": Annotated[int, Between(1)]}),
    Obj({"mean": NONE, "low": NONE, "high": NONE, "n": Empty}),
)
