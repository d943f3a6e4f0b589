"""Paired comparisons of runs on the same texts: the difference of a figure between two sets of runs with a
paired bootstrap interval over the texts (each resample draws the same texts for both sides; the runs of
several seeds are averaged inside each resample), McNemar's exact test on the discordant texts, and the
difference of per-seed figures with a bootstrap interval over the seeds."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from .metrics import CONFIDENCE, class_f1_batched, macro_f1_batched, mcnemar_exact, mean_estimate

RESAMPLES = 2000
PerText = Callable[[np.ndarray], np.ndarray]  # resampled text indices (..., n) -> the figure per resample


def accuracy_of(correct: np.ndarray) -> PerText:
    """`correct`: (seeds, n) booleans; the figure is the accuracy averaged over seeds."""
    return lambda idx: correct[:, idx].mean(axis=-1).mean(axis=0)


def macro_f1_of(gold: np.ndarray, predicted: np.ndarray, num_labels: int) -> PerText:
    """`gold`: (n,), `predicted`: (seeds, n); macro-F1 per seed (metrics' batched form), averaged over seeds."""
    f1 = macro_f1_batched(num_labels)
    return lambda idx: np.mean([f1(gold[idx], p[idx]) for p in predicted], axis=0)


def class_f1_of(gold: np.ndarray, predicted: np.ndarray, num_labels: int, label: int) -> PerText:
    """The F1 of one label (`label`'s index), per seed, averaged over seeds."""
    f1 = class_f1_batched(num_labels)
    return lambda idx: np.mean([f1(gold[idx], p[idx])[..., label] for p in predicted], axis=0)


def worst_recall_of(gold: np.ndarray, predicted: np.ndarray, num_labels: int) -> PerText:
    """The lowest recall over the labels present (the worst group of Sagawa et al. 2020), averaged over seeds."""

    def figure(idx: np.ndarray) -> np.ndarray:
        g = gold[idx]
        per_seed = []
        for p in predicted:
            hits = p[idx] == g
            recalls = [
                np.where((g == k).sum(-1) > 0, (hits & (g == k)).sum(-1) / np.maximum((g == k).sum(-1), 1), np.inf)
                for k in range(num_labels)
            ]
            per_seed.append(np.min(recalls, axis=0))
        return np.mean(per_seed, axis=0)

    return figure


def paired_difference(baseline: PerText, after: PerText, n: int, seed: int = 0) -> dict[str, Any]:
    """after − baseline on the same n texts, with a percentile bootstrap interval over the texts."""
    from scipy import stats

    everything = np.arange(n)
    value_b, value_a = float(baseline(everything)), float(after(everything))
    delta = value_a - value_b
    interval = [delta, delta]
    if n >= 2:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # degenerate resamples are expected on small or perfect data
            res = stats.bootstrap(
                (everything,),
                lambda idx, axis=-1: after(idx) - baseline(idx),
                vectorized=True,
                n_resamples=RESAMPLES,
                confidence_level=CONFIDENCE,
                method="percentile",
                rng=np.random.default_rng(seed),
            )
        low, high = res.confidence_interval
        interval = [delta if np.isnan(low) else float(low), delta if np.isnan(high) else float(high)]
    return {"baseline": value_b, "after": value_a, "delta": delta, "interval": interval, "n": n}


def per_seed_difference(baseline: list[float], after: list[float], seed: int = 0) -> dict[str, Any]:
    """Figures measured once per run (a validation-loss rise): the mean paired difference over seeds, with a
    bootstrap interval over the seeds (as wide as the seeds disagree; 3 seeds give a coarse one)."""
    deltas = [a - b for a, b in zip(after, baseline, strict=True)]
    estimate = mean_estimate(deltas, seed)
    return {
        "baseline": float(np.mean(baseline)),
        "after": float(np.mean(after)),
        "delta": estimate.value,
        "interval": [estimate.low, estimate.high],
        "n": len(deltas),
    }


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray) -> dict[str, Any]:
    """Exact McNemar test on the texts one run gets right and the other wrong (metrics.mcnemar_exact)."""
    only_a, only_b, p = mcnemar_exact(correct_a, correct_b)
    return {"only_a": only_a, "only_b": only_b, "p": p}
