"""Seeded, stratified splitting and subsampling, shared by every task."""

from __future__ import annotations

import dataclasses
from collections import Counter

from sklearn.model_selection import train_test_split

from .errors import DataError
from .task import Example, TaskData


def stratified_split(examples: list[Example], seed: int, validation: float = 0.1, test: float = 0.1) -> list[Example]:
    """Assign train/validation/test to examples that have no split of their own."""
    labels = [e.label for e in examples]
    rare = [label for label, n in Counter(labels).items() if n < 3]
    if rare:
        raise DataError(
            f"labels {', '.join(sorted(rare))} have fewer than 3 examples, too few to split "
            "into train, validation and test",
            fix="add examples or remove those labels",
        )
    rest, test_part = train_test_split(examples, test_size=test, stratify=labels, random_state=seed)
    train_part, val_part = train_test_split(
        rest, test_size=validation / (1 - test), stratify=[e.label for e in rest], random_state=seed
    )
    assigned = {
        e.id: split
        for split, part in (("train", train_part), ("validation", val_part), ("test", test_part))
        for e in part
    }
    return [dataclasses.replace(e, split=assigned[e.id]) for e in examples]


def subsample_train(data: TaskData, size: int, seed: int) -> TaskData:
    """`--train-size N`: a stratified, seeded subsample of the training split; other splits untouched."""
    train = data.split("train")
    if size > len(train):
        raise DataError(
            f"--train-size {size} is larger than the training split ({len(train)} examples)",
            where="--train-size",
            fix=f"use at most {len(train)}",
        )
    if size < len(data.labels):
        raise DataError(
            f"--train-size {size} cannot hold one example of each of {len(data.labels)} labels",
            where="--train-size",
            fix=f"use at least {len(data.labels)}",
        )
    if size < len(train):
        train, _ = train_test_split(train, train_size=size, stratify=[e.label for e in train], random_state=seed)
    keep = {e.id for e in train}
    examples = [e for e in data.examples if e.split != "train" or e.id in keep]
    return TaskData(data.name, examples, data.source, list(data.labels))
