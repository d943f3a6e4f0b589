"""[TF-IDF, mean word vector] + logistic regression (`--model vectors-lr`): the floor with some knowledge of
Japanese. The TF-IDF features are tfidf-lr's; beside them sits the L2-normalised mean of the text's word vectors
(plugins/models/word_vectors.py, `ja-ginza` unless `--word-vectors` names another table), so words the few training
texts never showed still count through their neighbours. C is the one with the best accuracy on the validation
split when the run has one (ties to the smaller C), else chosen by stratified cross-validation on the training
split; the model is then fitted on the training split alone, so the validation figures it reports are those of
the model selection, as a fine-tuned model's early stopping makes them.

Saved without pickle: the fitted numbers (IDF, coefficients, the vectors of every word seen) as safetensors and
the vocabulary and settings as JSON, so loading a run directory runs no code from it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np

from mikiwame.framework import hookimpl
from mikiwame.framework.config import RunConfig
from mikiwame.framework.errors import ModelError
from mikiwame.framework.models import ModelSource
from mikiwame.framework.runfiles import Between, Obj, read_json
from mikiwame.framework.task import TaskData
from mikiwame.plugins.models.tfidf_lr import MecabWords, word_tfidf
from mikiwame.plugins.models.word_vectors import GINZA, word_vectors

if TYPE_CHECKING:  # scipy and scikit-learn are imported where used: a second of start-up for commands that never fit
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression

NAME = "vectors-lr"
SAVED_JSON = "vectors_lr.json"
SAVED_ARRAYS = "vectors_lr.safetensors"
SAVED_RECORD = Obj(
    {
        "num_labels": Annotated[int, Between(1)],
        "table": str,
        "source": dict[str, Any],
        "C": Annotated[float, Between(1e-12)],
        "class_weight": str | None,
        "seed": Annotated[int, Between(0, 2**32 - 1)],
        "vocabulary": dict[str, Annotated[int, Between(0)]],
        "words": list[str],
        "missing": list[str],
    },
    {"format": int},
)
SAVE_FORMAT = 1
CS = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
FOLDS = 5


class MeanWordVectors:
    """Text -> the L2-normalised mean vector of its MeCab words that the table has (zeros when it has none).
    Words are looked up once (and cached on disk by word_vectors); `known` holds every word seen so far, with
    None for a miss, and is what a saved model keeps. A loaded model is `frozen`: a word it never saw is a miss,
    so a run directory predicts alike on any machine and never reads the table path it records."""

    def __init__(self, table: str, known: dict[str, np.ndarray | None] | None = None, *, frozen: bool = False) -> None:
        self.table = table
        self.known: dict[str, np.ndarray | None] = dict(known or {})
        self.frozen = frozen
        self.words = MecabWords()
        self.source: dict[str, str] = {}

    def transform(self, texts: list[str]) -> np.ndarray:
        tokenized = [self.words(text) for text in texts]
        new = sorted({w for words in tokenized for w in words} - self.known.keys())
        if new and self.frozen:
            self.known.update(dict.fromkeys(new))
        elif new:
            looked_up = word_vectors(self.table, new)
            self.source = looked_up.source
            for word, vector, how in zip(new, looked_up.vectors, looked_up.found_by, strict=True):
                self.known[word] = vector if how is not None else None
        dim = next((len(v) for v in self.known.values() if v is not None), 1)
        out = np.zeros((len(texts), dim), dtype=np.float64)
        for i, words in enumerate(tokenized):
            found = [self.known[w] for w in words if self.known[w] is not None]
            if found:
                mean = np.mean(found, axis=0)
                norm = np.linalg.norm(mean)
                out[i] = mean / norm if norm > 0 else mean
        return out

    def coverage(self) -> float:
        return sum(v is not None for v in self.known.values()) / max(len(self.known), 1)


class VectorsLogisticRegression:
    """A `TextClassifier` over [TF-IDF, mean word vector]; probabilities in the task's label order."""

    name = "[TF-IDF, mean word vector] + logistic regression"
    source = NAME

    def __init__(
        self,
        num_labels: int,
        table: str,
        class_weight: str | None = None,
        seed: int = 0,
        validation: tuple[list[str], list[int]] | None = None,
    ) -> None:
        self.num_labels, self.class_weight, self.seed = num_labels, class_weight, seed
        self.validation = validation if validation and validation[0] else None
        self.tfidf = word_tfidf()
        self.mean = MeanWordVectors(table)
        self.lr: LogisticRegression | None = None
        self.chosen_by: str | None = None

    def _logistic_regression(self, c: float) -> LogisticRegression:
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=c, max_iter=2000, class_weight=self.class_weight, random_state=self.seed)

    def _features(self, texts: list[str]) -> sparse.csr_matrix:
        from scipy import sparse

        return sparse.hstack([self.tfidf.transform(texts), sparse.csr_matrix(self.mean.transform(texts))]).tocsr()

    def fit(self, texts: list[str], labels: list[int]) -> None:
        self.tfidf.fit(texts)
        features = self._features(texts)
        if self.validation is not None:
            held_out = self._features(self.validation[0])
            fitted = [self._logistic_regression(c).fit(features, labels) for c in CS]
            scores = [float(np.mean(lr.predict(held_out) == np.asarray(self.validation[1]))) for lr in fitted]
            self.lr, self.chosen_by = fitted[int(np.argmax(scores))], "validation accuracy"
            return
        counts = np.bincount(labels)
        folds = min(FOLDS, int(counts[counts > 0].min()))
        if folds >= 2:
            from sklearn.linear_model import LogisticRegressionCV
            from sklearn.model_selection import StratifiedKFold

            search = LogisticRegressionCV(
                Cs=list(CS),
                cv=StratifiedKFold(folds, shuffle=True, random_state=self.seed),
                max_iter=2000,
                class_weight=self.class_weight,
                random_state=self.seed,
            ).fit(features, labels)
            c, self.chosen_by = float(np.ravel(search.C_)[0]), f"{folds}-fold cross-validation on the training split"
        else:  # a label with one training example: nothing to cross-validate on
            c, self.chosen_by = 10.0, "default (a label has one training example)"
        self.lr = self._logistic_regression(c).fit(features, labels)

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.num_labels))
        if texts and self.lr is not None:
            out[:, self.lr.classes_] = self.lr.predict_proba(self._features(texts))
        return out

    def save(self, directory: Path) -> None:
        from safetensors.numpy import save_file

        if self.lr is None:
            raise ModelError("vectors-lr: save() before fit()", fix="fit the model first")
        directory.mkdir(parents=True, exist_ok=True)
        found = [w for w, v in self.mean.known.items() if v is not None]
        arrays = {
            "idf": self.tfidf.idf_,
            "coef": self.lr.coef_,
            "intercept": self.lr.intercept_,
            "classes": self.lr.classes_.astype(np.int64),
            "word_vectors": np.stack([self.mean.known[w] for w in found]) if found else np.zeros((0, 1)),
        }
        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(directory / SAVED_ARRAYS))
        record = {
            "format": SAVE_FORMAT,
            "num_labels": self.num_labels,
            "table": self.mean.table,
            "source": self.mean.source,
            "C": self.lr.C,
            "class_weight": self.class_weight,
            "seed": self.seed,
            "vocabulary": {k: int(v) for k, v in self.tfidf.vocabulary_.items()},
            "words": found,
            "missing": [w for w, v in self.mean.known.items() if v is None],
        }
        (directory / SAVED_JSON).write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> VectorsLogisticRegression:
        from safetensors.numpy import load_file

        try:
            record = read_json(directory / SAVED_JSON, SAVED_RECORD)
            arrays = load_file(str(directory / SAVED_ARRAYS))
            model = cls(record["num_labels"], record["table"], record["class_weight"], record["seed"])
            model.tfidf = word_tfidf(record["vocabulary"])
            model.tfidf.idf_ = arrays["idf"]
            known: dict[str, np.ndarray | None] = dict(zip(record["words"], arrays["word_vectors"], strict=True))
            if arrays["coef"].shape[1] != len(arrays["idf"]) + arrays["word_vectors"].shape[1]:
                raise ValueError("coefficients, vocabulary and vectors differ in size")
            known.update(dict.fromkeys(record["missing"]))
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ModelError(
                f"the vectors-lr model in {directory} cannot be read ({err})",
                fix="re-run the recipe with --config RUN_DIR/config.json to refit it",
            ) from None
        model.mean = MeanWordVectors(record["table"], known, frozen=True)
        model.mean.source = record["source"]
        lr = model._logistic_regression(record["C"])
        lr.coef_, lr.intercept_, lr.classes_ = arrays["coef"], arrays["intercept"], arrays["classes"]
        lr.n_features_in_ = arrays["coef"].shape[1]
        model.lr = lr
        return model

    def describe(self) -> dict[str, Any]:
        fitted = self.lr is not None
        parameters = int(self.lr.coef_.size + self.lr.intercept_.size) if fitted else None
        return {
            "name": self.name,
            "source": NAME,
            "architecture": "[TfidfVectorizer, mean word vector] + LogisticRegression (scikit-learn)",
            "pretrained": True,
            "peft": f"classifier:{NAME}",
            "vocabulary": len(self.tfidf.vocabulary_) if fitted else None,
            "word_tokenizer": "MecabTokenizer (unidic-lite, NFKC)",
            "parameters_total": parameters,
            "parameters_trainable": parameters,
            "pretraining_data": f"word vectors from {self.mean.table}; classifier fitted on the training split only",
            "initialisation": {"word_vectors": {**self.mean.source, "word_coverage": round(self.mean.coverage(), 4)}},
            "C": self.lr.C if fitted else None,
            "C_chosen_by": self.chosen_by,
            "class_weight": self.class_weight,
        }


class VectorsLrSource(ModelSource):
    name = NAME
    description = "[TF-IDF, mean word vector (ja-ginza)] + logistic regression: the floor that knows words"

    def load(self, config: RunConfig, task: TaskData) -> VectorsLogisticRegression:
        balanced = "balanced" if config.class_weights == "balanced" else None
        table = config.options.get("init_vectors") or GINZA
        validation = task.split("validation")
        held_out = ([e.text for e in validation], [task.label2id[e.label] for e in validation])
        return VectorsLogisticRegression(len(task.labels), table, balanced, config.seed, held_out)

    def load_saved(self, directory: Path) -> VectorsLogisticRegression:
        if not (Path(directory) / SAVED_JSON).is_file():
            raise ModelError(
                f"{directory} has no {SAVED_JSON}", fix="give the run directory of a --model vectors-lr run"
            )
        return VectorsLogisticRegression.load(Path(directory))


@hookimpl
def mikiwame_register_models(register):
    register(VectorsLrSource())
