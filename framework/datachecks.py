"""Checks every task's data gets before training: label counts, duplicates and leakage, empty texts,
labels that training never saw. Problems that make training meaningless are errors; the rest warnings."""

from __future__ import annotations

import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from .config import RunConfig
from .errors import DataError
from .task import SPLITS, TaskData

MAX_EXAMPLES_SHOWN = 5


@dataclass
class DataChecks:
    summary: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


def _normalise(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).split())


def _duplicates(data: TaskData, key: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Groups of examples sharing a key: (within one split, across splits)."""
    groups: dict[str, list[Any]] = defaultdict(list)
    for e in data.examples:
        groups[key(e.text)].append(e)
    within: list[dict[str, Any]] = []
    across: list[dict[str, Any]] = []
    for text, members in groups.items():
        if len(members) < 2:
            continue
        record = {"text": text, "examples": [{"id": e.id, "split": e.split, "label": e.label} for e in members]}
        (across if len({e.split for e in members}) > 1 else within).append(record)
    return within, across


def check_data(data: TaskData, config: RunConfig) -> DataChecks:
    train = data.split("train")
    if not train:
        raise DataError(
            f"task {data.name!r} has no training examples ({data.source})",
            fix="check the split column or the data path",
        )
    train_labels = {e.label for e in train}
    if len(train_labels) < 2:
        raise DataError(
            f"the training split of {data.source} has only one label ({next(iter(train_labels))!r}); "
            "a classifier needs at least two",
            fix="check the label column",
        )
    for split in SPLITS[1:]:
        unseen = sorted({e.label for e in data.split(split)} - train_labels)
        if unseen:
            first = next(e for e in data.split(split) if e.label in unseen)
            raise DataError(
                f"label {unseen[0]!r} appears in {split} but never in train",
                where=first.source or first.id,
                fix="add training examples of that label, or remove it from the other splits",
            )
    empty = [e for e in data.examples if not e.text.strip()]
    if empty:
        raise DataError(
            f"empty or whitespace-only text ({len(empty)} examples)",
            where=empty[0].source or empty[0].id,
            fix="fill or remove the empty rows",
        )
    counts = {s: dict(sorted(Counter(e.label for e in data.split(s)).items())) for s in SPLITS if data.split(s)}
    exact_within, exact_across = _duplicates(data, lambda t: t)
    norm_within, norm_across = _duplicates(data, _normalise)
    warnings = []
    if norm_across:
        shown = "; ".join(
            f"{g['text'][:40]!r} in {', '.join(sorted({m['split'] for m in g['examples']}))}"
            for g in norm_across[:MAX_EXAMPLES_SHOWN]
        )
        message = (
            f"{len(norm_across)} texts appear in more than one split (leakage: evaluation sees training "
            f"texts), e.g. {shown}"
        )
        if config.strict:
            raise DataError(message, fix="deduplicate the data, or drop --strict to continue with a warning")
        warnings.append(message)
    conflicting = [g for g in norm_within + norm_across if len({m["label"] for m in g["examples"]}) > 1]
    if conflicting:
        warnings.append(
            f"{len(conflicting)} duplicated texts carry different labels, e.g. "
            f"{conflicting[0]['text'][:40]!r}: {sorted({m['label'] for m in conflicting[0]['examples']})}"
        )
    summary = {
        "source": data.source,
        "labels": data.labels,
        "label_counts": counts,
        "duplicates": {
            "exact_within_split": len(exact_within),
            "exact_across_splits": len(exact_across),
            "normalised_within_split": len(norm_within),
            "normalised_across_splits": len(norm_across),
            "across_examples": norm_across[:MAX_EXAMPLES_SHOWN],
            "conflicting_labels": len(conflicting),
        },
    }
    return DataChecks(summary, warnings)
