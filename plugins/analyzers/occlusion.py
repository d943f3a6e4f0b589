"""The occlusion oracle: delete a unit from every held-out text that contains it and is predicted as one label,
predict again, and count what flips. What the model really relies on, without any attribution method.

Held-out titles and reviews are short, so this costs one forward pass per unit occurrence, batched across
occurrences; it is both a method of the `shortcuts` analyzer (`--shortcuts-method occlusion`) and the reference
the attribution-proposed detector is judged against (benchmarks/shortcut_recall.py).

The relied-on rule (docs/shortcuts.md): a (unit, predicted label) pair with support ≥ `min_support` texts,
training purity of the unit itself ≥ MIN_PURITY, and a deletion flip rate ≥ MIN_FLIP_RATE.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mikiwame.framework.japanese import Span
from mikiwame.framework.metrics import mean_interval, wilson
from mikiwame.plugins.analyzers.shortcut_units import (
    MIN_PURITY,
    TextUnits,
    fold_overlapping,
    grow_tags,
    text_units,
    training_counts,
    unit_evidence,
)

MIN_SUPPORT = 10  # held-out texts predicted as the label that contain the unit
MIN_FLIP_RATE = 0.5  # share of those texts whose prediction flips when the unit is deleted

Pair = tuple[str, str]  # (unit key, predicted label)


def delete_spans(text: str, spans: Sequence[Span]) -> str:
    """The text with the given character spans cut out (the rest untouched)."""
    keep = [True] * len(text)
    for s in spans:
        keep[s.start : s.end] = [False] * (s.end - s.start)
    return "".join(c for c, k in zip(text, keep, strict=True) if k)


@dataclass
class HeldOut:
    """Held-out texts with the model's predictions and every text's candidate units; `support` lists, per
    (unit, predicted label), the texts predicted as the label that contain the unit."""

    texts: list[str]
    probs: np.ndarray
    labels: list[str]
    units: list[TextUnits]
    support: dict[Pair, list[int]]

    @classmethod
    def predict(cls, predictor: Any, texts: Sequence[str], training: TrainingUnits) -> HeldOut:
        """The texts' predictions and units, the tags the training data grew among them."""
        probs = predictor.probabilities(list(texts)).numpy()
        units = [text_units(t, training.tags) for t in texts]
        support: dict[Pair, list[int]] = defaultdict(list)
        for i, found in enumerate(units):
            for key in found:
                support[(key, predictor.labels[int(probs[i].argmax())])].append(i)
        return cls(list(texts), probs, list(predictor.labels), units, dict(support))

    @property
    def predicted(self) -> np.ndarray:
        return self.probs.argmax(-1)

    def occlude(self, predictor: Any, pairs: Sequence[Pair], seed: int) -> dict[Pair, dict[str, Any]]:
        """For each pair, delete the unit from every text of its support and predict again (one batch of all
        deletions, sorted by length): flip rate (Wilson) and mean drop of the predicted-class probability
        (bootstrap)."""
        jobs = [(pair, i) for pair in pairs for i in self.support[pair]]
        deleted = [delete_spans(self.texts[i], self.units[i][pair[0]]) for pair, i in jobs]
        order = sorted(range(len(deleted)), key=lambda j: len(deleted[j]))
        after = np.empty((len(deleted), len(self.labels)))
        if deleted:
            after[order] = predictor.probabilities([deleted[j] for j in order]).numpy()
        predicted = self.predicted
        flips: dict[Pair, list[bool]] = defaultdict(list)
        drops: dict[Pair, list[float]] = defaultdict(list)
        for (pair, i), p in zip(jobs, after, strict=True):
            flips[pair].append(bool(p.argmax() != predicted[i]))
            drops[pair].append(float(self.probs[i, predicted[i]] - p[predicted[i]]))
        return {
            pair: {
                "deletion_flip_rate": wilson(sum(flips[pair]), len(flips[pair])),
                "deletion_probability_drop": mean_interval(drops[pair], seed),
            }
            for pair in pairs
        }


class TrainingUnits:
    """The tags the training texts define, and per unit how many training texts of each label contain it;
    purity and evidence are read from here."""

    def __init__(self, texts: Sequence[str], labels: Sequence[str]) -> None:
        self.tags = grow_tags(texts, labels)
        self.counts = training_counts(texts, labels, self.tags)
        self.per_label = Counter(labels)

    def purity(self, pair: Pair) -> tuple[float, int]:
        """The share of the unit's training texts that carry the label, and their number."""
        train = self.counts.get(pair[0], Counter())
        n = sum(train.values())
        return (train[pair[1]] / n if n else 0.0), n

    def describe(self, pair: Pair, held_out: HeldOut, effect: dict[str, Any]) -> dict[str, Any]:
        """One (unit, label) row: support, purity of the unit itself, its deletion effect and its evidence."""
        unit, label = pair
        purity, n_train = self.purity(pair)
        evidence = unit_evidence(
            unit,
            label,
            held_out.texts,
            held_out.units,
            held_out.support[pair],
            self.counts.get(unit, Counter()),
            self.per_label[label],
        )
        return {
            "unit": unit,
            "label": label,
            "kind": evidence.pop("kind"),
            "support": len(held_out.support[pair]),
            "train_count": n_train,
            "train_purity": purity,
            **effect,
            "evidence": evidence,
        }


def relied_on(row: dict[str, Any], min_support: int) -> bool:
    """The oracle's rule: enough support, a pure unit, and a deletion that flips at least MIN_FLIP_RATE."""
    rate = row["deletion_flip_rate"]["rate"] or 0.0
    return row["support"] >= min_support and row["train_purity"] >= MIN_PURITY and rate >= MIN_FLIP_RATE


def fold(rows: list[dict[str, Any]], held_out: HeldOut) -> list[dict[str, Any]]:
    """The rows that stay after overlapping units are folded into the one that carries the effect; each kept row
    lists the units folded into it."""
    pairs = [(r["unit"], r["label"]) for r in rows]
    kept = fold_overlapping(pairs, held_out.units, held_out.support)
    out = []
    for row, pair in zip(rows, pairs, strict=True):
        if kept[pair] == pair:
            folded = sorted(p[0] for p, k in kept.items() if k == pair and p != pair)
            out.append({**row, "folded": folded})
    return out


def occlusion_oracle(
    predictor: Any, held_out: HeldOut, training: TrainingUnits, *, min_support: int = MIN_SUPPORT, seed: int = 0
) -> dict[str, Any]:
    """Every (unit, predicted label) pair with support ≥ `min_support`, deleted and predicted again; the
    relied-on ones (the rule above), overlapping ones folded, strongest flip first."""
    pairs = sorted(pair for pair, texts in held_out.support.items() if len(texts) >= min_support)
    effects = held_out.occlude(predictor, pairs, seed)
    rows = [training.describe(pair, held_out, effects[pair]) for pair in pairs]
    strongest = sorted(
        (r for r in rows if relied_on(r, min_support)),
        key=lambda r: (-r["deletion_flip_rate"]["rate"], -r["support"], r["unit"]),
    )
    return {
        "min_support": min_support,
        "n_units_tested": len(pairs),
        "n_deletions": sum(len(held_out.support[p]) for p in pairs),
        "relied_on": fold(strongest, held_out),
    }


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """One unit found by two methods: same label, and one contains the other (folding may keep 【X】 where the
    other kept X when their tested sets differ)."""
    return a["label"] == b["label"] and (a["unit"] in b["unit"] or b["unit"] in a["unit"])


def judge(flagged: Sequence[dict[str, Any]], reference: Sequence[dict[str, Any]], strong: float = 0.7) -> dict:
    """A detector's flagged units against the oracle's relied-on ones: recall, precision, and the oracle's units
    it missed (all of them, and those whose deletion flips at least `strong`)."""
    missed = [r for r in reference if not any(_same(r, f) for f in flagged)]
    right = [f for f in flagged if any(_same(f, r) for r in reference)]
    return {
        "recall": 1 - len(missed) / len(reference) if reference else None,
        "precision": len(right) / len(flagged) if flagged else None,
        "n_reference": len(reference),
        "n_flagged": len(flagged),
        "missed": [(r["unit"], r["label"], r["deletion_flip_rate"]["rate"]) for r in missed],
        "strong_missed": [(r["unit"], r["label"]) for r in missed if r["deletion_flip_rate"]["rate"] >= strong],
    }
