"""What a task plugin hands the engine: labelled texts in named splits, with a sorted label map."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from .config import RunConfig

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class Example:
    id: str
    text: str
    label: str
    split: str
    source: str = ""  # "file:line" where the example came from, for error messages
    # What the task knows about the text beyond its label, as (name, value) pairs, e.g. (("annotator votes",
    # "unanimous"),): saved in predictions.jsonl, and the errors analyzer gives accuracy on each value's slice.
    slices: tuple[tuple[str, str], ...] = ()


@dataclass
class TaskData:
    """All examples of a task. Labels are sorted so label ids never depend on file order."""

    name: str
    examples: list[Example]
    source: str
    labels: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.labels:
            self.labels = sorted({e.label for e in self.examples})

    def split(self, name: str) -> list[Example]:
        return [e for e in self.examples if e.split == name]

    @property
    def label2id(self) -> dict[str, int]:
        return {label: i for i, label in enumerate(self.labels)}


class Task(Protocol):
    """A task plugin: `name`, a one-line `description`, and `load` returning every split."""

    name: str
    description: str

    def load(self, config: RunConfig) -> TaskData: ...
