"""Seeded, stratified splitting and subsampling, shared by every task. scikit-learn is imported where used: it
costs every command's start-up a second, and a task with splits of its own never needs it."""

from __future__ import annotations

import dataclasses
from collections import Counter

from .errors import DataError
from .task import Example, TaskData


def stratified_split(
    examples: list[Example], seed: int, validation: float = 0.1, test: float = 0.1, where: str | None = None
) -> list[Example]:
    """Assign train/validation/test to examples that have no split of their own. `where` (the data file) is
    named in the error when there are too few examples to stratify."""
    labels = [e.label for e in examples]
    rare = [label for label, n in Counter(labels).items() if n < 3]
    if rare:
        raise DataError(
            f"labels {', '.join(sorted(rare))} have fewer than 3 examples, too few to split "
            "into train, validation and test",
            where=where,
            fix="add examples, remove those labels, or give the split yourself (--csv-split-column)",
        )
    from sklearn.model_selection import train_test_split

    try:
        rest, test_part = train_test_split(examples, test_size=test, stratify=labels, random_state=seed)
        train_part, val_part = train_test_split(
            rest, test_size=validation / (1 - test), stratify=[e.label for e in rest], random_state=seed
        )
    except ValueError as err:  # scikit-learn: a split smaller than the number of labels
        raise DataError(
            f"{len(examples)} examples of {len(set(labels))} labels are too few for a stratified "
            f"train/validation/test split ({err})",
            where=where,
            fix="add examples (each split needs one of every label), or give the split yourself (--csv-split-column)",
        ) from None
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
        from sklearn.model_selection import train_test_split

        try:
            train, _ = train_test_split(train, train_size=size, stratify=[e.label for e in train], random_state=seed)
        except ValueError as err:  # scikit-learn: a label with one example, or too few left over to stratify
            raise DataError(
                f"cannot draw a stratified --train-size {size} from {len(train)} training examples ({err})",
                where="--train-size",
                fix=f"use the whole training split (drop --train-size) or a size below {len(train) - len(data.labels)}",
            ) from None
    keep = {e.id for e in train}
    examples = [e for e in data.examples if e.split != "train" or e.id in keep]
    return TaskData(data.name, examples, data.source, list(data.labels))


def cap_held_out(data: TaskData, size: int, seed: int) -> TaskData:
    """The validation and test splits each cut to a stratified, seeded sample of at most `size` (unstratified
    when a label is too rare to stratify); training untouched. For models that score every text slowly."""
    from sklearn.model_selection import train_test_split

    keep: set[str] = set()
    for split in ("validation", "test"):
        part = data.split(split)
        if len(part) > size:
            try:
                part, _ = train_test_split(part, train_size=size, stratify=[e.label for e in part], random_state=seed)
            except ValueError:  # scikit-learn: a label with too few examples to stratify
                part, _ = train_test_split(part, train_size=size, random_state=seed)
        keep.update(e.id for e in part)
    examples = [e for e in data.examples if e.split == "train" or e.id in keep]
    return TaskData(data.name, examples, data.source, list(data.labels))
