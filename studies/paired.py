"""Paired comparisons of two classifiers on the same test texts, as the PEFT comparison records them: the
pairing of `mikiwame compare` (framework/compare.py: McNemar's exact test on the discordant pairs and a paired
bootstrap interval of the accuracy difference over the texts). With a few hundred texts a 2-point difference is
often noise; these say whether it is."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from mikiwame.framework.compare import accuracy_difference
from mikiwame.framework.metrics import mcnemar_exact

__all__ = ["PairedComparison", "compare_paired", "mcnemar_exact"]


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
    a = np.atleast_2d(np.asarray(correct_a, dtype=bool))
    b = np.atleast_2d(np.asarray(correct_b, dtype=bool))
    result = accuracy_difference(b, a, seed)  # a − b: a is "after", b the reference
    low, high = result["interval"]
    test = result["mcnemar"]
    return PairedComparison(result["delta"], low, high, a.shape[-1], test["only_b"], test["only_a"], test["p"])
