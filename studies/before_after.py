"""The before/after table behind recipes/before_after.py: majority baseline, the tfidf-lr floor, zero-shot cloze
(each template, raw and calibrated), in-context learning (each k and selection, mean over seeds), an
off-the-shelf pipeline with label mapping, and fine-tuned models, all on the same test split with n and 95%
intervals. Rows whose inputs are not given are left out; a fine-tuned row that does not beat the tfidf-lr floor
(or, without it, the majority baseline) says so."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table
from sklearn.dummy import DummyClassifier
from sklearn.model_selection import train_test_split

from mikiwame.framework.config import RunConfig
from mikiwame.framework.metrics import accuracy_estimate, macro_f1_estimate
from mikiwame.framework.options import option
from mikiwame.framework.plugins import PluginSet, build_plugin_set
from mikiwame.framework.recipe import build_command_line, config_from_command_line
from mikiwame.framework.results import RunResults
from mikiwame.framework.runner import run, user_errors_exit
from mikiwame.framework.task import Example, TaskData
from mikiwame.plugins.models.cloze import ClozeSource
from mikiwame.plugins.models.icl import SELECTIONS, CausalLMScorer, icl_grid
from mikiwame.plugins.models.pipeline import PipelineSource
from mikiwame.plugins.models.prompting import load_language_model, load_prompt_spec

FLOOR_MODEL = "tfidf-lr"


@dataclass
class Row:
    name: str
    kind: str
    accuracy: dict[str, Any] | None
    macro_f1: dict[str, Any] | None
    note: str = ""
    seconds: float | None = None


@dataclass
class TableOptions:
    icl_ks: list[int] = option([0, 1, 4, 8], "k values of the ICL rows")
    icl_selections: list[str] = option(list(SELECTIONS), "demonstration selections of the ICL rows")
    icl_seeds: list[int] = option([0, 1, 2], "demonstration seeds (variance over them)")
    fine_tune: list[str] = option([], "models to fine-tune: tiny, a directory, a hub id")
    prompt_eval_size: int | None = option(
        None, "score prompting rows on a stratified, seeded subsample of the test split"
    )


def parse(description: str, defaults: RunConfig, argv: Sequence[str] | None, plugins: PluginSet) -> RunConfig:
    command_line, extra = build_command_line(description, defaults, plugins, own=[("before/after table", TableOptions)])
    return config_from_command_line(command_line, extra, argv, "before_after", plugins)[0]


def _row(name: str, kind: str, gold: list[int], predicted: np.ndarray, k: int, seed: int, **extra: Any) -> Row:
    return Row(
        name,
        kind,
        accuracy_estimate(gold, predicted).to_dict(),
        macro_f1_estimate(gold, predicted, k, seed).to_dict(),
        **extra,
    )


def _evaluated(data: TaskData, size: int | None, seed: int) -> list[Example]:
    examples = data.split("test") or data.split("validation")
    if size is None or size >= len(examples):
        return examples
    kept, _ = train_test_split(examples, train_size=size, stratify=[e.label for e in examples], random_state=seed)
    return kept


@dataclass
class Evaluated:
    """The texts every row is scored on: the test split (or validation) and the prompting rows' subsample."""

    data: TaskData
    train_xy: tuple[list[str], list[int]]
    texts: list[str]
    gold: list[int]
    prompt_xy: tuple[list[str], list[int]]
    k: int
    seed: int

    def row(self, name: str, kind: str, predicted: np.ndarray, prompting: bool = False, **extra: Any) -> Row:
        gold = self.prompt_xy[1] if prompting else self.gold
        return _row(name, kind, gold, predicted, self.k, self.seed, **extra)


def collect_rows(config: RunConfig, plugins: PluginSet) -> tuple[list[Row], dict[str, Any]]:
    options, seed = config.options, config.seed
    data = plugins.tasks.get(config.task, option="--task").load(config)
    train = data.split("train")
    test = data.split("test") or data.split("validation")
    prompt_test = _evaluated(data, options.get("prompt_eval_size"), seed)
    inputs = Evaluated(
        data,
        ([e.text for e in train], [data.label2id[e.label] for e in train]),
        [e.text for e in test],
        [data.label2id[e.label] for e in test],
        ([e.text for e in prompt_test], [data.label2id[e.label] for e in prompt_test]),
        len(data.labels),
        seed,
    )
    rows = _baseline_rows(config, plugins, inputs)
    if options.get("cloze_lm"):
        rows += _cloze_rows(config, inputs)
    if options.get("icl_lm"):
        rows += _icl_rows(config, inputs)
    if options.get("pipeline_model"):
        pipe = PipelineSource().load(config, data)
        pipe.fit(*inputs.train_xy)
        note = f"neutral below {pipe.mapping.threshold:.3f}" if pipe.mapping.threshold is not None else ""
        rows.append(
            inputs.row("pipeline + label map", "off-the-shelf", pipe.predict_proba(inputs.texts).argmax(1), note=note)
        )
    runs = {}
    for model in options.get("fine_tune", []):
        row, runs[model] = _fine_tuned_row(config, plugins, model)
        rows.append(row)
    floor_row = next((r for r in rows if r.kind == "floor" and r.accuracy), rows[0])
    for r in rows:
        if r.kind == "fine-tuned" and r.accuracy["value"] <= floor_row.accuracy["value"]:
            r.note = (r.note + "; " if r.note else "") + f"does NOT beat the {floor_row.name} floor"
    context = {
        "task": data.name,
        "split": "test" if data.split("test") else "validation",
        "n": len(test),
        "prompt_n": len(prompt_test),
        "runs": runs,
        "config": config.to_dict(),
    }
    return rows, context


def _baseline_rows(config: RunConfig, plugins: PluginSet, inputs: Evaluated) -> list[Row]:
    """The majority class, and the classical floor when its plugin is installed."""
    labels = inputs.train_xy[1]
    majority = DummyClassifier(strategy="most_frequent").fit(np.zeros((len(labels), 1)), labels)
    rows = [inputs.row("majority", "baseline", majority.predict(np.zeros((len(inputs.gold), 1))))]
    if FLOOR_MODEL not in plugins.models:
        return [*rows, Row(FLOOR_MODEL, "floor", None, None, note="model plugin not installed in this checkout")]
    started = time.perf_counter()
    floor = plugins.models.get(FLOOR_MODEL).load(config, inputs.data)
    floor.fit(*inputs.train_xy)
    predicted = floor.predict_proba(inputs.texts).argmax(1)
    return [*rows, inputs.row(FLOOR_MODEL, "floor", predicted, seconds=time.perf_counter() - started)]


def _cloze_rows(config: RunConfig, inputs: Evaluated) -> list[Row]:
    started = time.perf_counter()
    cloze = ClozeSource().load(config, inputs.data)
    rows = []
    for template, kinds in cloze.scores(inputs.prompt_xy[0]).items():
        for kind, probabilities in kinds.items():
            name = f"cloze {template}" + (" (calibrated)" if kind == "calibrated" else "")
            rows.append(inputs.row(name, "zero-shot", probabilities.argmax(1), prompting=True))
    rows[-1].seconds = time.perf_counter() - started
    return rows


def _icl_rows(config: RunConfig, inputs: Evaluated) -> list[Row]:
    """Each k and selection, mean over demonstration seeds (with and without a chain of thought)."""
    options, data = config.options, inputs.data
    spec = load_prompt_spec(options.get("prompts"), data.name, data.labels)
    model, tokenizer = load_language_model(options["icl_lm"], "causal", "--icl-lm")
    scorer = CausalLMScorer(model.requires_grad_(False), tokenizer, config.eval_batch_size)
    variants = [0] + ([options["icl_cot_tokens"]] if options.get("icl_cot_tokens") else [])
    rows = []
    for cot in variants:
        started = time.perf_counter()
        grid = (options["icl_ks"], options["icl_selections"], options["icl_seeds"])
        for cell in icl_grid(scorer, spec, options["icl_lm"], inputs.train_xy, inputs.prompt_xy, *grid, cot):
            rows.append(_icl_row(cell, len(inputs.prompt_xy[1]), cot))
        rows[-1].seconds = time.perf_counter() - started
    return rows


def _icl_row(cell: Any, n: int, cot: int) -> Row:
    d, f1 = cell.to_dict(), np.asarray(cell.macro_f1s)
    accuracy = {**d["accuracy_pooled"], "value": d["accuracy_mean"], "n": n, "method": "mean; Wilson of seeds pooled"}
    macro_f1 = {
        "value": float(f1.mean()),
        "low": float(f1.min()),
        "high": float(f1.max()),
        "n": n,
        "method": "mean; min-max over seeds",
    }
    name = f"ICL k={cell.k}" + (f" {cell.selection}" if cell.k else "") + (" +CoT" if cot else "")
    per_seed = ", ".join(f"{a:.3f}" for a in cell.accuracies)
    note = f"{len(cell.seeds)} seeds: accuracy sd {d['accuracy_sd']:.3f} ({per_seed})"
    return Row(name, "in-context", accuracy, macro_f1, note=note)


def _fine_tuned_row(config: RunConfig, plugins: PluginSet, model: str) -> tuple[Row, str]:
    started = time.perf_counter()
    final = run(dataclasses.replace(config, model=model, recipe="before_after"), plugins)
    results = RunResults.load(final)
    split = "test" if "test" in results.metrics["after"] else "validation"
    after = results.metrics["after"][split]
    name = f"fine-tuned {model} ({results.metrics['model']['peft']})"
    row = Row(name, "fine-tuned", after["accuracy"], after["macro_f1"], seconds=time.perf_counter() - started)
    return row, str(final)


def _cell(e: dict[str, Any] | None) -> str:
    return "—" if e is None else f"{e['value']:.3f} [{e['low']:.3f}, {e['high']:.3f}]"


def markdown(rows: list[Row]) -> str:
    lines = ["| row | kind | accuracy [95% CI] | macro-F1 [95% CI] | n | note |", "|---|---|---:|---:|---:|---|"]
    for r in rows:
        n = r.accuracy["n"] if r.accuracy else "—"
        lines.append(f"| {r.name} | {r.kind} | {_cell(r.accuracy)} | {_cell(r.macro_f1)} | {n} | {r.note} |")
    return "\n".join(lines)


def table(rows: list[Row], context: dict[str, Any]) -> Table:
    t = Table(title=f"Before / after: {context['task']}, {context['split']} split", title_justify="left")
    for column in ("row", "kind", "accuracy [95% CI]", "macro-F1 [95% CI]", "n", "note"):
        t.add_column(column, justify="right" if column in ("n",) or "CI" in column else "left")
    for r in rows:
        n = str(r.accuracy["n"]) if r.accuracy else "—"
        style = "bold red" if "NOT" in r.note else None
        t.add_row(r.name, r.kind, _cell(r.accuracy), _cell(r.macro_f1), n, r.note, style=style)
    return t


def main(description: str, defaults: RunConfig, argv: Sequence[str] | None = None) -> Path:
    """Parse the recipe's command line (its `defaults`), score every row, write the table as JSON and Markdown
    and show it; a user error ends as every recipe's does (`user_errors_exit`)."""
    plugins = build_plugin_set()
    with user_errors_exit():
        config = parse(description, defaults, argv, plugins)
        rows, context = collect_rows(config, plugins)
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"before_after-{context['task']}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    record = {"schema_version": 1, **context, "rows": [dataclasses.asdict(r) for r in rows]}
    path.write_text(json.dumps(record, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    path.with_suffix(".md").write_text(markdown(rows) + "\n", encoding="utf-8")
    console = Console()
    console.print(table(rows, context))
    console.print(f"written: {path} and {path.with_suffix('.md').name}")
    return path
