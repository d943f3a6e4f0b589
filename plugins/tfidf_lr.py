"""TF-IDF over MeCab words + logistic regression (`--model tfidf-lr`): the honest floor every transformer is
compared to. It fits in seconds, and its predictions go through the same evaluation, run directory and reports
as a fine-tuned model (the runner's classifier path). `--class-weights balanced` reaches its loss too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from mikiwame.framework import hookimpl
from mikiwame.framework.config import RunConfig
from mikiwame.framework.errors import ModelError
from mikiwame.framework.task import TaskData

from .tiny_model import mecab_words

NAME = "tfidf-lr"
SAVED = "tfidf_lr.joblib"


class MecabWords:
    """The tiny model's word tokenizer as a picklable callable: the MeCab tagger itself cannot be pickled,
    so it is built on first use after loading."""

    def __init__(self) -> None:
        self._words: Any = None

    def __call__(self, text: str) -> list[str]:
        if self._words is None:
            self._words = mecab_words()
        return self._words.tokenize(text)

    def __getstate__(self) -> dict[str, Any]:
        return {"_words": None}


def word_tfidf(vocabulary: dict[str, int] | None = None) -> TfidfVectorizer:
    """Sublinear TF-IDF of MeCab word uni- and bigrams; `vocabulary` fixes the features of a saved model."""
    return TfidfVectorizer(
        tokenizer=MecabWords(),
        token_pattern=None,
        lowercase=False,
        ngram_range=(1, 2),
        sublinear_tf=True,
        vocabulary=vocabulary,
    )


class TfidfLogisticRegression:
    """A `TextClassifier`: word uni- and bigrams weighted by sublinear TF-IDF, then multinomial logistic
    regression. Probabilities come back in the task's label order even if training lacked a label."""

    name = "TF-IDF (MeCab words, 1-2 grams) + logistic regression"
    source = NAME

    def __init__(self, num_labels: int, class_weight: str | None = None, seed: int = 0) -> None:
        self.num_labels = num_labels
        self.pipeline = Pipeline(
            [
                ("tfidf", word_tfidf()),
                ("lr", LogisticRegression(C=10.0, max_iter=2000, class_weight=class_weight, random_state=seed)),
            ]
        )

    def fit(self, texts: list[str], labels: list[int]) -> None:
        self.pipeline.fit(texts, labels)

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.num_labels))
        if texts:
            out[:, self.pipeline.classes_] = self.pipeline.predict_proba(texts)
        return out

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        joblib.dump(self, directory / SAVED)

    def describe(self) -> dict[str, Any]:
        lr = self.pipeline.named_steps["lr"]
        fitted = hasattr(lr, "coef_")
        parameters = int(lr.coef_.size + lr.intercept_.size) if fitted else None
        return {
            "name": self.name,
            "source": NAME,
            "architecture": "TfidfVectorizer + LogisticRegression (scikit-learn)",
            "pretrained": False,
            "peft": f"classifier:{NAME}",
            "vocabulary": len(self.pipeline.named_steps["tfidf"].vocabulary_) if fitted else None,
            "word_tokenizer": "MecabTokenizer (unidic-lite, NFKC)",
            "parameters_total": parameters,
            "parameters_trainable": parameters,
            "pretraining_data": "none (fitted on the training split only)",
            "class_weight": lr.class_weight,
        }


class TfidfLrSource:
    name = NAME
    description = "TF-IDF over MeCab words + logistic regression (scikit-learn): the floor to beat"

    def load(self, config: RunConfig, task: TaskData) -> TfidfLogisticRegression:
        balanced = "balanced" if config.class_weights == "balanced" else None
        return TfidfLogisticRegression(len(task.labels), balanced, config.seed)

    def load_saved(self, directory: Path) -> TfidfLogisticRegression:
        path = Path(directory) / SAVED
        if not path.is_file():
            raise ModelError(f"{directory} has no {SAVED}", fix="give the run directory of a --model tfidf-lr run")
        return joblib.load(path)


@hookimpl
def mikiwame_register_models(register):
    register(TfidfLrSource())
