"""What the prompt-based classifiers (cloze and in-context learning) share: the prompt file that holds the
templates and the words for each label, and loading the language model they score with.

A prompt file is JSON (data/prompts/<task>.json by default, `--cloze-prompts PATH` for another):

    {"templates": {"neutral": "「{text}」これは[MASK]のニュースです。", ...},   # cloze: one [MASK] each
     "verbalizers": {"politics": ["政治"], ...},                                # words per task label
     "content_free": ["N/A", "", "[MASK]"],                                    # calibration inputs
     "score": "sum",                                                           # or "mean" per piece
     "icl": {"demonstration": "見出し:{text} 分野:{label}", "query": "見出し:{text} 分野:", "separator": " 。 ",
             "reasoning_query": "見出し:{text} 理由:", "answer": " 分野:"}}

`--cloze-instruction TEXT` writes an instruction first in every prompt (cloze templates, in-context prompts).

A word of several pieces is scored by the log-probability of its whole piece sequence (chain rule); a label
with several words by the total probability of its words (log-sum-exp). "score": "mean" divides each word's
log-probability by its number of pieces instead, which removes the preference for short words.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, Literal

from rich.console import Console

from mikiwame.data import bundled
from mikiwame.framework import inert
from mikiwame.framework.errors import ConfigError, ModelError
from mikiwame.framework.models import hub_reachable
from mikiwame.framework.runfiles import Between, Obj

PROMPTS_DIR = bundled("prompts")
MASK = "[MASK]"
DEFAULT_CONTENT_FREE = ("N/A", "", MASK)


@dataclass(frozen=True)
class IclFormat:
    """How an in-context prompt is written. Chain of thought: `reasoning_query`, the generated reasoning,
    then `answer`, after which each label word is scored."""

    demonstration: str = "{text} : {label}"
    query: str = "{text} :"
    separator: str = " 。 "
    reasoning_query: str = "{text} 理由:"
    answer: str = " 答え:"
    instruction: str = ""  # written before the demonstrations (`--cloze-instruction`)


# How a saved cloze or icl run's setup file holds its prompts, as `load_saved` reads them back (runfiles.py).
VERBALIZERS = dict[str, Annotated[list[str], Between(1)]]
FORMAT = Obj({name: str for name in IclFormat.__dataclass_fields__})
SAVED_PROMPTS = Obj({"lm": str, "prompt_file": str, "verbalizers": VERBALIZERS, "score": Literal["sum", "mean"]})


@dataclass(frozen=True)
class PromptSpec:
    """Templates and verbalizers for one task, validated against the task's labels."""

    source: str
    templates: dict[str, str]
    verbalizers: dict[str, list[str]]
    content_free: tuple[str, ...] = DEFAULT_CONTENT_FREE
    score: str = "sum"
    icl: IclFormat = field(default_factory=IclFormat)

    def label_word(self, label: str) -> str:
        """The string ICL demonstrations show and score for a label: its first verbalizer word."""
        return self.verbalizers[label][0]


def with_instruction(spec: PromptSpec, instruction: str) -> PromptSpec:
    """`spec` with `instruction` written first in every prompt: before each cloze template and before an
    in-context prompt's demonstrations (`--cloze-instruction`; the `prompt-instruction` countermeasure). The
    text is never cut to make room for it. An empty instruction leaves the spec as it is."""
    if not instruction:
        return spec
    templates = {name: instruction + template for name, template in spec.templates.items()}
    return replace(spec, templates=templates, icl=replace(spec.icl, instruction=instruction))


def default_prompt_path(task: str) -> Path:
    return PROMPTS_DIR / f"{task}.json"


def load_prompt_spec(path: str | Path | None, task: str, labels: list[str]) -> PromptSpec:
    """Read and check a prompt file: every task label needs at least one word, every template one [MASK]."""
    where = "--cloze-prompts"
    file = Path(path) if path else default_prompt_path(task)
    if not file.is_file():
        raise ConfigError(
            f"prompt file {file} does not exist",
            where=where,
            fix=f"write one like {default_prompt_path('headlines')} (templates, verbalizers) and pass {where} PATH",
        )
    try:
        raw: dict[str, Any] = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ConfigError(f"{file}:{err.lineno}: not valid JSON ({err.msg})", where=where) from None
    verbalizers = {
        label: [words] if isinstance(words, str) else list(words) for label, words in raw.get("verbalizers", {}).items()
    }
    missing = [label for label in labels if not verbalizers.get(label)]
    unknown = sorted(set(verbalizers) - set(labels))
    if missing or unknown:
        raise ConfigError(
            f"{file}: verbalizers do not match the task's labels (missing: {', '.join(missing) or 'none'}; "
            f"not task labels: {', '.join(unknown) or 'none'}). Task labels: {', '.join(labels)}",
            where=where,
            fix='give every task label a list of one or more words under "verbalizers"',
        )
    templates = dict(raw.get("templates", {}))
    for name, template in templates.items():
        if template.count(MASK) != 1 or "{text}" not in template:
            raise ConfigError(
                f"{file}: template {name!r} must contain {{text}} once and {MASK} exactly once: {template!r}",
                where=where,
            )
    if raw.get("score", "sum") not in ("sum", "mean"):
        raise ConfigError(f'{file}: "score" must be "sum" or "mean", got {raw["score"]!r}', where=where)
    unknown_icl = sorted(set(raw.get("icl", {})) - set(IclFormat.__dataclass_fields__))
    if unknown_icl:
        raise ConfigError(
            f'{file}: unknown "icl" keys {", ".join(unknown_icl)}',
            where=where,
            fix=f"use {', '.join(IclFormat.__dataclass_fields__)}",
        )
    return PromptSpec(
        str(file),
        templates,
        {label: verbalizers[label] for label in labels},
        tuple(raw.get("content_free", DEFAULT_CONTENT_FREE)),
        raw.get("score", "sum"),
        IclFormat(**raw.get("icl", {})),
    )


def load_language_model(spec: str | None, kind: str, option: str) -> tuple[Any, Any]:
    """A masked (`kind="masked"`) or causal (`kind="causal"`) LM and its tokenizer, from a hub id or a local
    directory such as the one `recipes/pretrain_mlm.py` writes. No fall-back: a random LM scores nothing."""
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer

    if not spec:
        raise ConfigError(
            f"this model needs a {kind} language model",
            where=option,
            fix=f"give {option} HUB_ID_OR_DIR (offline: a directory written by recipes/pretrain_mlm.py"
            + (" --causal)" if kind == "causal" else ")"),
        )
    local = Path(spec).expanduser()
    offline = not local.is_dir() and not hub_reachable()
    auto = AutoModelForMaskedLM if kind == "masked" else AutoModelForCausalLM
    try:
        tokenizer = AutoTokenizer.from_pretrained(spec, local_files_only=offline)
        model = auto.from_pretrained(spec, local_files_only=offline)
    except (OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelError(
            f"could not load a {kind} language model from {spec!r}: {first}",
            where=option,
            fix="give a local model directory or a hub id reachable from here",
        ) from None
    return model.eval(), tokenizer


def scored_in_batches(count: int, batch_size: int, what: str, console: Console | None = None) -> Iterator[int]:
    """The start of each batch of `count` prompts, with a progress bar on stderr while they are scored: a
    language model scores every text once per label word and template, and a cloze run on livedoor went over
    30 minutes without a sign of life. Transient, and drawn only on a terminal (logs get nothing)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn(what), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console or inert.console(stderr=True), transient=True) as progress:
        task = progress.add_task(what, total=count)
        for start in range(0, count, batch_size):
            yield start
            progress.advance(task, min(batch_size, count - start))
