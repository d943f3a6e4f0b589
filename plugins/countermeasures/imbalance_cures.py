"""Cures for errors that concentrate on the small labels (the `errors` analyzer's finding, read with the run's
label counts and per-label recall): loss weights by label, or re-sampling the training split to balance it.
The target figure is the worst label's recall on the test split."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Any

from mikiwame.framework import hookimpl
from mikiwame.framework.config import RunConfig
from mikiwame.framework.countermeasure import OptionValuesCure, Target
from mikiwame.framework.options import option, read_options
from mikiwame.framework.task import TaskData

WORST_RECALL = "worst-label recall"
IMBALANCE_RATIO = 1.5  # largest / smallest training label before errors are read as an imbalance effect


@dataclass
class ResampleOptions:
    """re-sampling (imbalance countermeasure)"""

    oversample: bool = option(False, "repeat training texts of the smaller labels up to the largest label's count")


@hookimpl
def mikiwame_options():
    return ResampleOptions


@hookimpl(trylast=True)  # after the task's steps and the shortcut cure: it repeats the texts they made
def mikiwame_transform_data(config: RunConfig, data: TaskData) -> TaskData | None:
    """Random over-sampling, seeded: each smaller label's texts repeated in a shuffled order (every text once
    before any twice) until the label has as many as the largest."""
    if not read_options(ResampleOptions, config.options).oversample:
        return None
    by_label = defaultdict(list)
    for e in data.split("train"):
        by_label[e.label].append(e)
    largest = max(len(v) for v in by_label.values())
    rng, added = random.Random(config.seed), []
    for label in sorted(by_label):
        order = list(by_label[label])
        rng.shuffle(order)
        for k in range(largest - len(order)):
            added.append(replace(order[k % len(order)], id=f"{order[k % len(order)].id}~copy{k + 1}"))
    return TaskData(data.name, data.examples + added, data.source, data.labels)


def small_labels_suffer(results: Any) -> bool:
    """The training labels are imbalanced and the smallest one's test recall is below the mean recall."""
    counts = results.data_checks.get("label_counts", {}).get("train", {})
    report = results.metrics.get("after", {}).get("test", {}).get("classification_report", {})
    if len(counts) < 2 or not report or max(counts.values()) < IMBALANCE_RATIO * min(counts.values()):
        return False
    smallest = min(counts, key=lambda label: (counts[label], label))
    recalls = [report[label]["recall"] for label in counts if label in report]
    return smallest in report and report[smallest]["recall"] < sum(recalls) / len(recalls)


@dataclass(frozen=True)
class ImbalanceCure(OptionValuesCure):
    analyzer: str = "errors"

    def targets(self, analysis: dict[str, Any], results: Any) -> list[Target]:
        return [Target(self.analyzer, "small-label errors", WORST_RECALL)] if small_labels_suffer(results) else []


CURES = (
    ImbalanceCure(
        "class-weights",
        "loss weights n / (k * count) per label (--class-weights balanced)",
        (("class_weights", "balanced"),),
        ("King & Zeng 2001, Political Analysis, Logistic Regression in Rare Events Data",),
    ),
    ImbalanceCure(
        "oversample",
        "repeat the smaller labels' training texts up to the largest label's count",
        (("oversample", True),),
        ("Buda et al. 2018, Neural Networks 106, A systematic study of the class imbalance problem in CNNs",),
    ),
)


@hookimpl
def mikiwame_register_countermeasures(register):
    for cure in CURES:
        register(cure)
