"""TF-IDF over MeCab words + logistic regression (`--model tfidf-lr`): the honest floor every transformer is
compared to. It fits in seconds, and its predictions go through the same evaluation, run directory and reports
as a fine-tuned model (the runner's classifier path). `--class-weights balanced` reaches its loss too."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
from safetensors.numpy import load_file, save_file

from mikiwame.framework import hookimpl
from mikiwame.framework.config import RunConfig
from mikiwame.framework.errors import ModelError
from mikiwame.framework.models import ModelSource
from mikiwame.framework.runfiles import Between, Obj, read_json
from mikiwame.framework.task import TaskData
from mikiwame.plugins.models.tiny import mecab_words

if TYPE_CHECKING:  # scikit-learn is imported where used: a second of start-up for commands that never fit
    from sklearn.feature_extraction.text import TfidfVectorizer

NAME = "tfidf-lr"
SAVED = "tfidf_lr.json"
SAVED_ARRAYS = "tfidf_lr.safetensors"
SAVED_RECORD = Obj({"format": str, "num_labels": Annotated[int, Between(1)], "vocabulary": list[str]})
PICKLED = "tfidf_lr.joblib"
FORMAT = "mikiwame-tfidf-lr-1"


class MecabWords:
    """The tiny model's word tokenizer as a callable, its MeCab tagger built on first use."""

    def __init__(self) -> None:
        self._words: Any = None

    def __call__(self, text: str) -> list[str]:
        if self._words is None:
            self._words = mecab_words()
        return self._words.tokenize(text)


def word_tfidf(vocabulary: Mapping[str, int] | Iterable[str] | None = None) -> TfidfVectorizer:
    """Sublinear TF-IDF of MeCab word uni- and bigrams; `vocabulary` fixes the features of a saved model."""
    from sklearn.feature_extraction.text import TfidfVectorizer

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

    def __init__(
        self, num_labels: int, class_weight: str | None = None, seed: int = 0, vocabulary: list[str] | None = None
    ) -> None:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline

        self.num_labels = num_labels
        self.pipeline = Pipeline(
            [
                ("tfidf", word_tfidf(vocabulary)),
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
        """Vocabulary as JSON, arrays as safetensors: loading a received run never unpickles (runs code)."""
        directory.mkdir(parents=True, exist_ok=True)
        tfidf, lr = self.pipeline.named_steps["tfidf"], self.pipeline.named_steps["lr"]
        vocabulary = sorted(tfidf.vocabulary_, key=tfidf.vocabulary_.__getitem__)
        record = {"format": FORMAT, "num_labels": self.num_labels, "vocabulary": vocabulary}
        (directory / SAVED).write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")
        arrays = {"idf": tfidf.idf_, "coef": lr.coef_, "intercept": lr.intercept_, "classes": lr.classes_}
        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, directory / SAVED_ARRAYS)

    @classmethod
    def load(cls, directory: Path) -> TfidfLogisticRegression:
        """The fitted pipeline rebuilt from `save`'s files, checked for consistent shapes."""
        try:
            record = read_json(directory / SAVED, SAVED_RECORD)
            arrays = load_file(directory / SAVED_ARRAYS)
            vocabulary, idf, coef = record["vocabulary"], arrays["idf"], arrays["coef"]
            consistent = record["format"] == FORMAT and len(vocabulary) == len(idf) == coef.shape[1]
        except (OSError, ValueError, KeyError, TypeError, IndexError) as err:
            raise ModelError(
                f"the tfidf-lr model in {directory} cannot be read ({err})",
                fix="re-run the recipe with --config RUN_DIR/config.json to refit it",
            ) from None
        if not consistent:
            raise ModelError(
                f"the tfidf-lr model in {directory} is inconsistent (vocabulary, idf and coefficients differ in size)",
                fix="re-run the recipe with --config RUN_DIR/config.json to refit it",
            )
        model = cls(int(record["num_labels"]), vocabulary=vocabulary)
        tfidf, lr = model.pipeline.named_steps["tfidf"], model.pipeline.named_steps["lr"]
        tfidf.idf_ = idf
        lr.coef_, lr.intercept_, lr.classes_ = coef, arrays["intercept"], arrays["classes"]
        lr.n_features_in_ = coef.shape[1]
        return model

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


class TfidfLrSource(ModelSource):
    name = NAME
    description = "TF-IDF over MeCab words + logistic regression (scikit-learn): the floor to beat"

    def load(self, config: RunConfig, task: TaskData) -> TfidfLogisticRegression:
        balanced = "balanced" if config.class_weights == "balanced" else None
        return TfidfLogisticRegression(len(task.labels), balanced, config.seed)

    def load_saved(self, directory: Path) -> TfidfLogisticRegression:
        directory = Path(directory)
        if not (directory / SAVED).is_file():
            if (directory / PICKLED).is_file():
                raise ModelError(
                    f"{directory / PICKLED} was saved by an older mikiwame as a pickle, which can run code when "
                    "loaded; it is not loaded",
                    fix="refit it: re-run the recipe with --config RUN_DIR/config.json (seconds for tfidf-lr)",
                )
            raise ModelError(f"{directory} has no {SAVED}", fix="give the run directory of a --model tfidf-lr run")
        return TfidfLogisticRegression.load(directory)


@hookimpl
def mikiwame_register_models(register):
    register(TfidfLrSource())
