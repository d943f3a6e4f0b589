"""Paired comparisons of two classifiers on the same test texts: McNemar's exact test on the discordant pairs
(a binomial test, scipy.stats.binomtest) and a paired-bootstrap interval for the accuracy difference
(scipy.stats.bootstrap over texts). With a few hundred texts a 2-point difference is often noise; these say
whether it is."""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from mikiwame.framework.metrics import mcnemar_exact

CONFIDENCE = 0.95


@dataclass(frozen=True)
class PairedComparison:
    """`difference` = accuracy(a) - accuracy(b), averaged over seeds; `only_a`/`only_b`: texts (of the seed the
    McNemar test uses) that only a / only b got right."""

    difference: float
    low: float
    high: float
    n: int
    only_a: int
    only_b: int
    mcnemar_p: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare_paired(correct_a: np.ndarray, correct_b: np.ndarray, seed: int = 0) -> PairedComparison:
    """`correct_*`: (seeds, texts) booleans, row i of both from the same seed. The interval resamples texts
    (each text's correctness averaged over seeds); McNemar uses the first seed, the one every LR was chosen on."""
    a = np.atleast_2d(np.asarray(correct_a, dtype=np.float64))
    b = np.atleast_2d(np.asarray(correct_b, dtype=np.float64))
    per_text = a.mean(axis=0) - b.mean(axis=0)
    value = float(per_text.mean())
    if np.all(per_text == per_text[0]):
        low = high = value
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # degenerate resamples are expected on small data
            ci = stats.bootstrap(
                (per_text,),
                np.mean,
                n_resamples=2000,
                confidence_level=CONFIDENCE,
                method="percentile",
                rng=np.random.default_rng(seed),
            ).confidence_interval
        low, high = float(ci.low), float(ci.high)
    only_a, only_b, p = mcnemar_exact(a[0] > 0, b[0] > 0)
    return PairedComparison(value, low, high, per_text.size, only_a, only_b, p)
