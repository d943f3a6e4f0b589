"""An already fine-tuned classifier, used as it is through `transformers.pipeline("text-classification")`,
with its labels mapped onto the task's (`--model pipeline --pipeline-model ID_OR_DIR --pipeline-label-map ...`).

A model with fewer labels than the task (a 2-label sentiment model on JRTE's positive/neutral/negative) can
fill one task label by a neutral band: when the model's top score is below a threshold, the text is that label.
The threshold is tuned on the validation split (macro-F1) unless `--pipeline-neutral-threshold` fixes it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table

from mikiwame.framework import hookimpl
from mikiwame.framework.config import RunConfig
from mikiwame.framework.errors import ConfigError, ModelError
from mikiwame.framework.models import LoadedModel, ModelSource, describe_model, hub_reachable, quiet_transformers
from mikiwame.framework.options import option, read_options
from mikiwame.framework.peft_method import read_method_file
from mikiwame.framework.results import ReportSection, RunResults, read_json_object
from mikiwame.framework.runfiles import Count, Nullable, Obj, read_json
from mikiwame.framework.task import TaskData
from mikiwame.plugins.models.kept_model import keep_model, kept_model

MAPPING_FILE = "label_mapping.json"
MAPPING_RECORD = Obj(
    {
        "mapping": dict[str, str],
        "neutral_label": str | None,
        "neutral_threshold": float | None,
        "tuning": Nullable(Obj({"n": Count, "macro_f1": float})),
    }
)


def parse_label_map(value: str | None) -> dict[str, str]:
    """`MODEL=TASK,...` or a JSON file holding {"MODEL": "TASK"}."""
    if not value:
        return {}
    path = Path(value)
    if path.is_file():
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ConfigError(
                f"{path}:{err.lineno}: not valid JSON ({err.msg})", where="--pipeline-label-map"
            ) from None
        return {str(k): str(v) for k, v in raw.items()}
    pairs = [part.split("=", 1) for part in value.split(",") if part.strip()]
    bad = [p[0] for p in pairs if len(p) != 2 or not p[0].strip() or not p[1].strip()]
    if bad:
        raise ConfigError(
            f"cannot read {bad[0]!r} in --pipeline-label-map {value!r}",
            where="--pipeline-label-map",
            fix="write MODEL_LABEL=TASK_LABEL pairs separated by commas, or give a JSON file",
        )
    return {k.strip(): v.strip() for k, v in pairs}


@dataclass(frozen=True)
class LabelMapping:
    """Model label -> task label, plus an optional neutral band: the text is `neutral` exactly when the model's
    top score is strictly below `threshold` (a score equal to the threshold keeps the mapped label)."""

    mapping: dict[str, str]
    task_labels: list[str]
    neutral: str | None = None
    threshold: float | None = None

    @classmethod
    def checked(
        cls, mapping: dict[str, str], model_labels: list[str], task_labels: list[str], neutral: str | None
    ) -> LabelMapping:
        """Every model label mapped, onto task labels only, and every task label reachable; else one error
        that lists both label sets."""
        both = f"Model labels: {', '.join(model_labels)}. Task labels: {', '.join(task_labels)}."
        problems = []
        if unknown := sorted(set(mapping) - set(model_labels)):
            problems.append(f"not labels of the model: {', '.join(unknown)}")
        if unmapped := [m for m in model_labels if m not in mapping]:
            problems.append(f"model labels without a task label: {', '.join(unmapped)}")
        if foreign := sorted({t for t in mapping.values() if t not in task_labels}):
            problems.append(f"not labels of the task: {', '.join(foreign)}")
        if neutral is not None and neutral not in task_labels:
            problems.append(f"--pipeline-neutral-label {neutral!r} is not a task label")
        reached = set(mapping.values()) | ({neutral} if neutral else set())
        if unreached := [t for t in task_labels if t not in reached]:
            problems.append(f"task labels nothing maps to: {', '.join(unreached)} (a neutral band can fill one)")
        if problems:
            raise ConfigError(
                "the label map does not fit: " + "; ".join(problems) + ". " + both,
                where="--pipeline-label-map",
                fix="map every model label, e.g. --pipeline-label-map POSITIVE=positive,NEGATIVE=negative "
                "--pipeline-neutral-label neutral",
            )
        return cls(dict(mapping), list(task_labels), neutral)

    def probabilities(self, scores: list[dict[str, float]]) -> np.ndarray:
        """(n, task labels). Mapped scores add up per task label; inside the neutral band the neutral label
        takes the top label's probability and the top label gets none, so the argmax is the rule's answer."""
        index = {label: i for i, label in enumerate(self.task_labels)}
        out = np.zeros((len(scores), len(self.task_labels)))
        for row, s in zip(out, scores, strict=True):
            for model_label, score in s.items():
                row[index[self.mapping[model_label]]] += score
            top = max(s.values())
            if self.neutral is not None and self.threshold is not None and top < self.threshold:
                winner = int(np.argmax(row))
                row[index[self.neutral]], row[winner] = row[winner], row[index[self.neutral]]
        return out

    def tuned(self, scores: list[dict[str, float]], gold: list[int]) -> tuple[LabelMapping, list[dict[str, float]]]:
        """Try each distinct top score (and just above the largest, i.e. everything neutral) as the threshold,
        keep the best validation macro-F1 (ties: the lower threshold, the smaller band)."""
        from sklearn.metrics import f1_score  # here: a second of every command's start-up

        tops = sorted({max(s.values()) for s in scores})
        candidates = [0.0, *tops, float(np.nextafter(tops[-1], 2.0))] if tops else [0.0]
        grid = []
        for t in candidates:
            predicted = LabelMapping(self.mapping, self.task_labels, self.neutral, t).probabilities(scores).argmax(1)
            f1 = f1_score(gold, predicted, average="macro", zero_division=0)  # over labels seen in gold or predicted
            grid.append({"threshold": float(t), "macro_f1": float(f1)})
        best = max(grid, key=lambda g: (g["macro_f1"], -g["threshold"]))
        return LabelMapping(self.mapping, self.task_labels, self.neutral, best["threshold"]), grid


class PipelineClassifier:
    """A TextClassifier around a text-classification pipeline; `fit` only tunes the neutral band."""

    source = "pipeline"

    def __init__(
        self, pipe: Any, model_id: str, mapping: LabelMapping, validation: tuple[list[str], list[int]]
    ) -> None:
        self.pipe, self.model_id, self.mapping, self.validation = pipe, model_id, mapping, validation
        self.name = f"pipeline ({model_id})"
        self.tuning: dict[str, Any] = {}

    def model_scores(self, texts: list[str]) -> list[dict[str, float]]:
        outputs = self.pipe(texts, top_k=None, truncation=True, batch_size=32) if texts else []
        return [{o["label"]: float(o["score"]) for o in out} for out in outputs]

    def fit(self, texts: list[str], labels: list[int]) -> None:
        if self.mapping.neutral is None or self.mapping.threshold is not None:
            return
        val_texts, val_gold = self.validation
        if not val_texts:
            raise ConfigError(
                "the neutral band is tuned on the validation split, and this task has none",
                where="--pipeline-neutral-label",
                fix="give --pipeline-neutral-threshold T",
            )
        self.mapping, grid = self.mapping.tuned(self.model_scores(val_texts), val_gold)
        best = max(grid, key=lambda g: (g["macro_f1"], -g["threshold"]))
        self.tuning = {"split": "validation", "n": len(val_texts), "threshold": self.mapping.threshold, **best}

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        return self.mapping.probabilities(self.model_scores(texts))

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        record = {
            "pipeline_model": self.model_id,
            "model_files": keep_model(self.pipe.model, self.pipe.tokenizer, self.model_id, directory, "pipeline"),
            "mapping": self.mapping.mapping,
            "neutral_label": self.mapping.neutral,
            "neutral_threshold": self.mapping.threshold,
            "tuning": self.tuning,
        }
        (directory / MAPPING_FILE).write_text(json.dumps(record, ensure_ascii=False, indent=2) + "\n", "utf-8")

    def describe(self) -> dict[str, Any]:
        model = self.pipe.model
        loaded = LoadedModel(model, self.pipe.tokenizer, self.model_id, self.source, pretrained=True)
        info = describe_model(loaded, model, "none (off-the-shelf pipeline)")
        info.update(name=self.name, label_map=self.mapping.mapping, neutral_label=self.mapping.neutral)
        return info


class PipelineSource(ModelSource):
    name = "pipeline"
    description = "an already fine-tuned classifier via transformers.pipeline, labels mapped (--pipeline-label-map)"

    def load(self, config: RunConfig, task: TaskData) -> PipelineClassifier:
        options = read_options(PipelineOptions, config.options)
        spec = options.pipeline_model
        if not spec:
            raise ConfigError("--model pipeline needs --pipeline-model HUB_ID_OR_DIR", where="--pipeline-model")
        pipe = load_pipeline(spec, spec)
        model_labels = [pipe.model.config.id2label[i] for i in sorted(pipe.model.config.id2label)]
        mapping = LabelMapping.checked(
            parse_label_map(options.label_map), model_labels, task.labels, options.neutral_label
        )
        threshold = options.neutral_threshold
        if threshold is not None:
            mapping = LabelMapping(mapping.mapping, mapping.task_labels, mapping.neutral, float(threshold))
        validation = task.split("validation")
        return PipelineClassifier(
            pipe, spec, mapping, ([e.text for e in validation], [task.label2id[e.label] for e in validation])
        )

    def load_saved(self, directory: Path) -> PipelineClassifier:
        """The run's pipeline model (its copy in the run, or its hub id) with the run's mapping and band."""
        path = Path(directory) / MAPPING_FILE
        record = read_json_object(path)
        pipe = load_pipeline(kept_model(Path(directory), record.get("model_files"), path), record["pipeline_model"])
        labels = read_method_file(Path(directory))["labels"]
        mapping = LabelMapping(record["mapping"], labels, record["neutral_label"], record["neutral_threshold"])
        classifier = PipelineClassifier(pipe, record["pipeline_model"], mapping, ([], []))
        classifier.tuning = record["tuning"]
        return classifier


def load_pipeline(location: str, spec: str) -> Any:
    """A text-classification pipeline on the CPU from `location` (a directory, or a hub id, offline from the
    cache); `spec` is what the user named, for the message."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    offline = not Path(location).expanduser().is_dir() and not hub_reachable()
    try:
        with quiet_transformers():
            model = AutoModelForSequenceClassification.from_pretrained(location, local_files_only=offline)
            tokenizer = AutoTokenizer.from_pretrained(location, local_files_only=offline)
            return pipeline("text-classification", model=model, tokenizer=tokenizer, device=-1)
    except (OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelError(f"could not load pipeline model {spec!r}: {first}", where="--pipeline-model") from None


@hookimpl
def mikiwame_register_models(register):
    register(PipelineSource())


@dataclass
class PipelineOptions:
    """off-the-shelf pipeline (--model pipeline)"""

    pipeline_model: str | None = option(None, "a fine-tuned text-classification model: hub id or directory")
    label_map: str | None = option(
        None, "MODEL=TASK pairs, comma-separated, or a JSON file", flag="--pipeline-label-map"
    )
    neutral_label: str | None = option(
        None, "task label for texts whose top model score is below the threshold", flag="--pipeline-neutral-label"
    )
    neutral_threshold: float | None = option(
        None, "fix the neutral band's threshold (default: tuned on validation)", flag="--pipeline-neutral-threshold"
    )


@hookimpl
def mikiwame_options():
    return PipelineOptions


@hookimpl
def mikiwame_report_sections(results: RunResults) -> list[ReportSection] | None:
    path = results.directory / "model" / MAPPING_FILE
    if not path.exists():
        return None
    record = read_json(path, MAPPING_RECORD)

    def table() -> Table:
        t = Table(title="Label mapping", show_header=False, title_justify="left")
        for model_label, task_label in record["mapping"].items():
            t.add_row(model_label, f"-> {task_label}")
        if record["neutral_label"]:
            tuning = record["tuning"]
            how = f"tuned on validation (n={tuning['n']}, macro-F1 {tuning['macro_f1']:.3f})" if tuning else "given"
            t.add_row(
                "neutral band", f"top score < {record['neutral_threshold']:.4f} -> {record['neutral_label']}, {how}"
            )
        return t

    return [ReportSection("label_mapping", "Label mapping", 36, record, table)]
