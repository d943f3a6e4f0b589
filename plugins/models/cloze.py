"""Zero-shot cloze classification with a masked LM: fill a template's [MASK] with each label's words and pick
the label whose words the model finds most probable (`--model cloze --cloze-lm HUB_ID_OR_DIR`).

Every template of the prompt file is scored in the same run, raw and calibrated by content-free inputs
(Zhao et al. 2021, "Calibrate before use"); `--cloze-template` and `--cloze-calibrate` pick which one gives the
run's predictions, and the report compares them all.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar

import numpy as np
import torch
from rich.table import Table

from mikiwame.framework import hookimpl
from mikiwame.framework.config import RunConfig
from mikiwame.framework.errors import ConfigError
from mikiwame.framework.metrics import accuracy_estimate, macro_f1_estimate
from mikiwame.framework.models import LoadedModel, ModelSource, describe_model
from mikiwame.framework.options import option, read_options
from mikiwame.framework.results import ReportSection, RunResults
from mikiwame.framework.runfiles import AllOf, Between, Obj, read_json, read_jsonl
from mikiwame.framework.splits import cap_held_out
from mikiwame.framework.task import TaskData
from mikiwame.plugins.models.kept_model import keep_model, kept_model
from mikiwame.plugins.models.prompting import (
    MASK,
    SAVED_PROMPTS,
    PromptSpec,
    load_language_model,
    load_prompt_spec,
    scored_in_batches,
    with_instruction,
)

SCORES_FILE = "cloze_scores.jsonl"
PROMPTING_MODELS = ("cloze", "icl")
SETUP_FILE = "cloze.json"
SETUP = AllOf(
    SAVED_PROMPTS,
    Obj(
        {
            "max_length": Annotated[int, Between(2, 65_536)],
            "templates": Annotated[dict[str, str], Between(1)],
            "content_free": list[str],
            "chosen": Obj({"template": str, "calibrated": bool}),
        }
    ),
)
SCORES = Obj({"text": str, "scores": dict[str, dict[str, list[float]]]})


class MaskedLMScorer:
    """log P(word | template filled with a text) for words of one or more WordPiece pieces.

    A word of m pieces fills m [MASK] slots. By the chain rule, piece i is read at slot i with pieces before it
    already written in and the later slots still masked; the word's score is the sum of those log-probabilities
    (or their mean, `piece_score="mean"`). The first piece alone never decides.
    """

    def __init__(self, model: Any, tokenizer: Any, max_length: int = 128, batch_size: int = 64) -> None:
        self.model, self.tokenizer = model, tokenizer
        self.max_length, self.batch_size = max_length, batch_size

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"] if text else []

    def pieces(self, word: str) -> list[int]:
        ids = self._ids(word)
        if not ids:
            raise ConfigError(f"verbalizer word {word!r} has no tokens", where="--cloze-prompts")
        return ids

    def _frame(self, text: str, template: str, room: int) -> tuple[list[int], list[int]]:
        """Token ids left and right of the [MASK] slot; the text (never the template) is cut to fit."""
        sides = template.split(MASK)
        fixed = sum(len(self._ids(part)) for side in sides for part in side.split("{text}"))
        budget = max(self.max_length - 2 - room - fixed, 0)
        text_ids = self._ids(text)[:budget]
        out = []
        for side in sides:
            if "{text}" in side:
                before, after = side.split("{text}")
                out.append(self._ids(before) + text_ids + self._ids(after))
            else:
                out.append(self._ids(side))
        return out[0], out[1]

    def word_log_probs(
        self, texts: Sequence[str], template: str, words: Sequence[str], mean: bool = False
    ) -> np.ndarray:
        """(len(texts), len(words)) log-probabilities of each word in the template's slot."""
        word_pieces = [self.pieces(w) for w in words]
        room = max(len(p) for p in word_pieces)
        cls, sep, mask = self.tokenizer.cls_token_id, self.tokenizer.sep_token_id, self.tokenizer.mask_token_id
        queries: list[tuple[int, int, list[int], int, int]] = []
        for i, text in enumerate(texts):
            left, right = self._frame(text, template, room)
            for j, pieces in enumerate(word_pieces):
                for step in range(len(pieces)):
                    slot = pieces[:step] + [mask] * (len(pieces) - step)
                    ids = [cls, *left, *slot, *right, sep]
                    queries.append((i, j, ids, 1 + len(left) + step, pieces[step]))
        scores = np.zeros((len(texts), len(words)))
        with torch.inference_mode():
            for start in scored_in_batches(len(queries), self.batch_size, "cloze: scoring prompts"):
                batch = queries[start : start + self.batch_size]
                width = max(len(q[2]) for q in batch)
                pad = self.tokenizer.pad_token_id or 0
                input_ids = torch.tensor([q[2] + [pad] * (width - len(q[2])) for q in batch])
                attention = torch.tensor([[1] * len(q[2]) + [0] * (width - len(q[2])) for q in batch])
                logits = self.model(input_ids=input_ids, attention_mask=attention).logits.float()
                rows = torch.arange(len(batch))
                at = logits[rows, torch.tensor([q[3] for q in batch])].log_softmax(-1)
                picked = at[rows, torch.tensor([q[4] for q in batch])].numpy()
                for (i, j, *_), value in zip(batch, picked, strict=True):
                    scores[i, j] += value
        if mean:
            scores /= np.asarray([len(p) for p in word_pieces])
        return scores


def label_probabilities(scorer: MaskedLMScorer, spec: PromptSpec, texts: Sequence[str], template: str) -> np.ndarray:
    """Each label's log-score is the log of the total probability of its words; softmax over labels."""
    from scipy.special import logsumexp, softmax  # here: scipy costs every command's start-up

    labels = list(spec.verbalizers)
    words = [w for label in labels for w in spec.verbalizers[label]]
    per_word = scorer.word_log_probs(texts, template, words, mean=spec.score == "mean")
    columns, start = [], 0
    for label in labels:
        n = len(spec.verbalizers[label])
        columns.append(logsumexp(per_word[:, start : start + n], axis=1))
        start += n
    return softmax(np.stack(columns, axis=1), axis=1)


def calibrate(probabilities: np.ndarray, content_free: np.ndarray) -> np.ndarray:
    """Zhao et al. 2021: divide by the label distribution the model gives a content-free input, renormalise."""
    scaled = probabilities / np.clip(content_free, 1e-12, None)
    return scaled / scaled.sum(axis=1, keepdims=True)


class ClozeClassifier:
    """A TextClassifier that never trains: `fit` is a no-op, every template is scored on every call."""

    source = "cloze"

    def __init__(
        self, scorer: MaskedLMScorer, spec: PromptSpec, lm_name: str, template: str | None, calibrated: bool
    ) -> None:
        self.scorer, self.spec, self.lm_name = scorer, spec, lm_name
        names = list(spec.templates)
        if not names:
            raise ConfigError(f'{spec.source} has no "templates"', where="--cloze-prompts")
        if template is not None and template not in spec.templates:
            raise ConfigError(
                f"unknown template {template!r}; {spec.source} has {', '.join(names)}", where="--cloze-template"
            )
        self.template = template or names[0]
        self.calibrated = calibrated
        self.name = f"cloze:{self.template}{' calibrated' if calibrated else ''} ({lm_name})"
        self.content_free = {
            name: label_probabilities(scorer, spec, list(spec.content_free), t).mean(axis=0)
            for name, t in spec.templates.items()
        }
        self.records: dict[str, dict[str, dict[str, list[float]]]] = {}

    def fit(self, texts: list[str], labels: list[int]) -> None:
        """Zero-shot: nothing is learned from the training split."""

    def scores(self, texts: list[str]) -> dict[str, dict[str, np.ndarray]]:
        """template -> {"raw": (n, labels), "calibrated": (n, labels)}."""
        out = {}
        for name, template in self.spec.templates.items():
            raw = label_probabilities(self.scorer, self.spec, texts, template)
            out[name] = {"raw": raw, "calibrated": calibrate(raw, self.content_free[name])}
        return out

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        scored = self.scores(texts)
        for i, text in enumerate(texts):
            self.records[text] = {t: {k: v[i].round(6).tolist() for k, v in s.items()} for t, s in scored.items()}
        return scored[self.template]["calibrated" if self.calibrated else "raw"]

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        setup = {
            "lm": self.lm_name,
            "lm_files": keep_model(self.scorer.model, self.scorer.tokenizer, self.lm_name, directory, "lm"),
            "max_length": self.scorer.max_length,
            "prompt_file": self.spec.source,
            "templates": self.spec.templates,
            "verbalizers": self.spec.verbalizers,
            "content_free": list(self.spec.content_free),
            "content_free_probabilities": {k: v.round(6).tolist() for k, v in self.content_free.items()},
            "score": self.spec.score,
            "chosen": {"template": self.template, "calibrated": self.calibrated},
        }
        (directory / SETUP_FILE).write_text(json.dumps(setup, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        with (directory / SCORES_FILE).open("w", encoding="utf-8") as fh:
            for text, record in self.records.items():
                fh.write(json.dumps({"text": text, "scores": record}, ensure_ascii=False) + "\n")

    def describe(self) -> dict[str, Any]:
        loaded = LoadedModel(self.scorer.model, self.scorer.tokenizer, self.lm_name, self.source, pretrained=True)
        info = describe_model(loaded, self.scorer.model, "none (zero-shot cloze)")
        info.update(name=self.name, templates=self.spec.templates, verbalizers=self.spec.verbalizers)
        return info


def template_comparison(run_dir: Path, predictions: list[dict[str, Any]], seed: int = 0) -> list[dict[str, Any]]:
    """Accuracy and macro-F1 (n, 95% interval) of every template, raw and calibrated, on each evaluated split."""
    setup = read_json(run_dir / "model" / SETUP_FILE, SETUP)
    scores = {r["text"]: r["scores"] for r in read_jsonl(run_dir / "model" / SCORES_FILE, SCORES)}
    labels = list(setup["verbalizers"])
    rows = []
    for split in ("validation", "test"):
        records = [p for p in predictions if p["split"] == split]
        if not records:
            continue
        gold = [labels.index(p["gold"]) for p in records]
        for template in setup["templates"]:
            for kind in ("raw", "calibrated"):
                predicted = [int(np.argmax(scores[p["text"]][template][kind])) for p in records]
                rows.append(
                    {
                        "split": split,
                        "template": template,
                        "calibrated": kind == "calibrated",
                        "accuracy": accuracy_estimate(gold, predicted).to_dict(),
                        "macro_f1": macro_f1_estimate(gold, predicted, len(labels), seed).to_dict(),
                    }
                )
    return rows


def _comparison_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="Cloze templates (95% CI)", title_justify="left")
    for column in ("split", "template", "calibration", "n", "accuracy", "macro-F1"):
        table.add_column(column, justify="right" if column in ("n", "accuracy", "macro-F1") else "left")
    for r in rows:
        a, f = r["accuracy"], r["macro_f1"]
        table.add_row(
            r["split"],
            r["template"],
            "content-free" if r["calibrated"] else "none",
            str(a["n"]),
            f"{a['value']:.3f} [{a['low']:.3f}, {a['high']:.3f}]",
            f"{f['value']:.3f} [{f['low']:.3f}, {f['high']:.3f}]",
        )
    return table


class ClozeSource(ModelSource):
    name = "cloze"
    description = "zero-shot cloze prompts on a masked LM (--cloze-lm), every template compared, calibrated"

    def load(self, config: RunConfig, task: TaskData) -> ClozeClassifier:
        options = read_options(PromptOptions, config.options)
        spec = with_instruction(load_prompt_spec(options.prompts, task.name, task.labels), options.prompt_instruction)
        model, tokenizer = load_language_model(options.cloze_lm, "masked", "--cloze-lm")
        scorer = MaskedLMScorer(model.requires_grad_(False), tokenizer, config.max_length, config.eval_batch_size)
        return ClozeClassifier(scorer, spec, options.cloze_lm, options.cloze_template, options.cloze_calibrate)

    def load_saved(self, directory: Path) -> ClozeClassifier:
        """The run's masked LM (its copy in the run, or its hub id) with the run's templates, words and choice."""
        path = Path(directory) / SETUP_FILE
        setup = read_json(path, SETUP)
        location = kept_model(Path(directory), setup.get("lm_files"), path)
        model, tokenizer = load_language_model(location, "masked", "--cloze-lm")
        spec = PromptSpec(
            setup["prompt_file"],
            setup["templates"],
            setup["verbalizers"],
            tuple(setup["content_free"]),
            setup["score"],
        )
        scorer = MaskedLMScorer(model.requires_grad_(False), tokenizer, setup["max_length"])
        chosen = setup["chosen"]
        return ClozeClassifier(scorer, spec, setup["lm"], chosen["template"], chosen["calibrated"])


@hookimpl
def mikiwame_register_models(register):
    register(ClozeSource())


@dataclass
class PromptOptions:
    """prompting (--model cloze / icl)"""

    SHOWN_WITH: ClassVar[tuple[str, ...]] = ("icl",)  # --cloze-prompts serves both

    prompts: str | None = option(
        None, "prompt file (JSON) of --model cloze and icl; default data/prompts/<task>.json", flag="--cloze-prompts"
    )
    cloze_lm: str | None = option(None, "masked LM for --model cloze: hub id or directory")
    cloze_template: str | None = option(None, "template whose predictions the run keeps (default: the first)")
    cloze_calibrate: bool = option(False, "keep the content-free-calibrated predictions")
    prompt_instruction: str = option(
        "", "an instruction written first in every prompt (cloze and icl)", flag="--cloze-instruction"
    )
    prompting_max_eval: int | None = option(
        None,
        "--model cloze / icl: evaluate on a stratified, seeded sample of at most N texts of the validation and "
        "of the test split (a language model scores each text once per label word)",
        flag="--cloze-max-eval",
    )

    def validate(self) -> None:
        if self.prompting_max_eval is not None and self.prompting_max_eval < 1:
            raise ConfigError(
                f"--cloze-max-eval must be at least 1, got {self.prompting_max_eval}",
                fix="give a number of texts, or leave it out to evaluate every text",
            )


@hookimpl
def mikiwame_options():
    return PromptOptions


@hookimpl
def mikiwame_transform_data(config: RunConfig, data: TaskData) -> TaskData | None:
    """`--cloze-max-eval N` caps a prompting run's held-out splits; other models ignore it."""
    cap = read_options(PromptOptions, config.options).prompting_max_eval
    if cap is None or config.model not in PROMPTING_MODELS:
        return None
    return cap_held_out(data, cap, config.seed)


@hookimpl
def mikiwame_report_sections(results: RunResults) -> list[ReportSection] | None:
    if not (results.directory / "model" / SETUP_FILE).is_file():
        return None
    rows = template_comparison(results.directory, results.predictions(), results.config.get("seed", 0))
    return [ReportSection("cloze_templates", "Cloze templates", 35, rows, lambda: _comparison_table(rows))]
