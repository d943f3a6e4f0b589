"""The seam for classifiers the engine does not train (TF-IDF + logistic regression, zero-shot prompts, an
off-the-shelf pipeline): they fit on texts and return probabilities, and their predictions flow into the same
evaluation, run directory, analyzers and reports as a fine-tuned transformer."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class TextClassifier(Protocol):
    """Returned by a model source's `load` instead of a `LoadedModel`.

    `fit` may do nothing (zero-shot); `predict_proba` returns an (n, labels) array in the task's label order;
    `save` writes what `load_saved(directory)` of the same model source reads back for `mikiwame predict` and
    `mikiwame analyze`: every model source that returns a TextClassifier has one (tests/test_model_kinds.py).
    """

    name: str
    source: str

    def fit(self, texts: list[str], labels: list[int]) -> None: ...

    def predict_proba(self, texts: list[str]) -> np.ndarray: ...

    def save(self, directory: Path) -> None: ...

    def describe(self) -> dict[str, Any]: ...
