"""How the `errors` analyzer's results read: rich tables in the terminal, HTML fragments in the report, and
the sections both come from."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from rich.console import Group
from rich.table import Table

from mikiwame.framework import html as h
from mikiwame.framework import inert
from mikiwame.framework.figures import with_interval
from mikiwame.framework.results import ReportSection

SHOWN = 10


def _example_table(title: str, rows: list[dict[str, Any]], extra: tuple[str, ...] = ()) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("text", overflow="fold", min_width=16, ratio=3)
    for column in ("gold", "predicted", "confidence", *extra):
        table.add_column(column, justify="left" if column in ("gold", "predicted") else "right")
    for r in rows:
        table.add_row(
            inert.text(r["text"]),
            inert.text(r["gold"]),
            inert.text(r["predicted"], style="red"),
            f"{r['confidence']:.3f}",
            *(inert.text(str(r[c])) for c in extra),
        )
    return table


def held_out_first(splits: Any) -> list[str]:
    return sorted(splits, key=lambda split: split == "train")


def pair_rows(result: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of the confusion-pair table: errors per split and the most confident example."""
    splits = list(result["errors"])
    headers = ["gold → predicted"]
    headers += [f"{s} (errors {result['errors'][s]['n_errors']}/{result['errors'][s]['n']})" for s in splits]
    headers.append("most confident example (held-out first)")
    counts: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    example: dict[tuple[str, str], str] = {}
    for s in held_out_first(splits):
        for pair in result["errors"][s]["pairs"]:
            key = (pair["gold"], pair["predicted"])
            counts[key][s] = pair["n"]
            example.setdefault(key, f"{pair['examples'][0]['text']} ({pair['examples'][0]['confidence']:.2f})")
    rows = [
        [f"{key[0]} → {key[1]}", *(str(counts[key].get(s, 0)) for s in splits), example[key]]
        for key in sorted(counts, key=lambda k: -sum(counts[k].values()))[:15]
    ]
    return headers, rows


def pairs_table(result: dict[str, Any]) -> Table:
    headers, rows = pair_rows(result)
    table = Table(title="Errors by confusion pair (saved model, predicted afresh)", title_justify="left")
    table.add_column(headers[0], style="bold")
    for header in headers[1:-1]:
        table.add_column(header, justify="right")
    table.add_column(headers[-1])
    for row in rows:
        table.add_row(*map(inert.text, row))
    return table


SLICE_COLUMNS = ("feature", "slice", "n", "accuracy [95% CI]")


def slice_rows(rows: list[dict[str, Any]]) -> list[list[str]]:
    """One row per slice; a feature is named on its first row only."""
    features = [s["feature"] for s in rows]
    return [
        [
            s["feature"] if i == 0 or features[i - 1] != s["feature"] else "",
            s["value"],
            str(s["accuracy"]["n"]),
            with_interval(s["accuracy"], "{:.3f}"),
        ]
        for i, s in enumerate(rows)
    ]


def slices_table(split: str, rows: list[dict[str, Any]]) -> Table:
    table = Table(title=f"Accuracy by slice ({split} split, 95% Wilson interval)", title_justify="left")
    for column in SLICE_COLUMNS:
        table.add_column(column, justify="right" if column == "n" else "left")
    for row in slice_rows(rows):
        table.add_row(*map(inert.text, row))
    return table


def _examples_html(caption: str, rows: list[dict[str, Any]], extra: tuple[str, ...] = ()) -> str:
    cells = [
        [r["text"], r["gold"], h.tag("span", r["predicted"], h.BAD), f"{r['confidence']:.3f}", *(r[c] for c in extra)]
        for r in rows
    ]
    return h.table(
        ("text", "gold", "predicted", "confidence", *extra), cells, caption, numeric=range(3, 4 + len(extra))
    )


def failures_html(result: dict[str, Any]) -> str:
    """Every misclassified example of every split (held-out splits first) in one table with a search box."""
    splits = held_out_first(result["errors"])
    failures = [(s, e) for s in splits for pair in result["errors"][s]["pairs"] for e in pair["examples"]]
    rows = [
        [split, e["id"], e["text"], e["gold"], e["predicted"], f"{e['confidence']:.3f}", f"{e['gold_probability']:.3f}"]
        for split, e in failures
    ]
    headers = ("split", "id", "text", "gold", "predicted", "confidence", "p(gold)")
    return h.join(
        [
            h.tag("h3", f"Every failure ({len(rows)}), most confident first within each confusion pair"),
            h.searchable_table("failures", headers, rows, "failures by text, label, split or id", numeric=(5, 6)),
        ]
    )


def errors_html(result: dict[str, Any]) -> str:
    headers, rows = pair_rows(result)
    caption = "Errors by confusion pair (saved model, predicted afresh)"
    return h.join([h.table(headers, rows, caption, numeric=range(1, len(headers) - 1)), failures_html(result)])


def slices_html(result: dict[str, Any]) -> str:
    return h.join(
        h.table(
            SLICE_COLUMNS, slice_rows(rows), f"Accuracy by slice ({split} split, 95% Wilson interval)", numeric=(2,)
        )
        for split, rows in result["slices"].items()
    )


def train_parts(result: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]], tuple[str, ...]] | str]:
    """The hard-training-examples section as (title, rows, extra columns) tables and lines of text."""
    wrong = result["train_wrong"]
    n_train = result["errors"].get("train", {}).get("n", 0)
    parts: list[tuple[str, list[dict[str, Any]], tuple[str, ...]] | str] = [
        (
            f"Training examples the final model gets wrong ({len(wrong)}/{n_train}): label noise or hard cases?",
            wrong[:SHOWN],
            (),
        )
    ]
    dyn = result["train_dynamics"]
    if not dyn["available"]:
        return [*parts, dyn["message"]]
    counts = ", ".join(f"{k}: {v}" for k, v in dyn["learned_at_epoch_counts"].items())
    late = [{**r, "learned": r["learned_at_epoch"] or "never"} for r in dyn["late_or_never"][:SHOWN]]
    return [
        *parts,
        f"learned at epoch (n={dyn['n']}): {counts}; forgotten at least once: {dyn['forgotten_at_least_once']}",
        (
            f"Learned late (after epoch {dyn['late_after_epoch']}) or never ({len(dyn['late_or_never'])})",
            late,
            ("learned", "forgotten", "mean_gold_probability"),
        ),
    ]


def train_renderable(result: dict[str, Any]) -> Group:
    return Group(*(inert.text(p) if isinstance(p, str) else _example_table(*p) for p in train_parts(result)))


def train_html(result: dict[str, Any]) -> str:
    return h.join(h.paragraph(p) if isinstance(p, str) else _examples_html(*p) for p in train_parts(result))


def _counts_only(summary: dict[str, Any]) -> dict[str, Any]:
    pairs = [{k: v for k, v in pair.items() if k != "examples"} for pair in summary["pairs"]]
    return {**summary, "pairs": pairs}


def report_sections(result: dict[str, Any]) -> list[ReportSection]:
    """Section data is what a reader needs (counts, slices, the top examples); the full lists stay in
    analyses/errors.json, which the JSON report also carries under `analyses`."""
    late = result["train_dynamics"].get("late_or_never", [])
    held_out = list(result["slices"])
    sections = [
        ReportSection(
            "errors",
            "Errors by confusion pair",
            60,
            {split: _counts_only(e) for split, e in result["errors"].items()},
            lambda: pairs_table(result),
            lambda: errors_html(result),
        ),
        ReportSection(
            "error_slices",
            "Accuracy by slice",
            61,
            result["slices"],
            lambda: Group(*(slices_table(s, result["slices"][s]) for s in held_out)),
            lambda: slices_html(result),
        ),
        ReportSection(
            "confident_errors",
            "Most confident errors",
            62,
            result["most_confident_errors"],
            lambda: Group(
                *(
                    _example_table(f"Most confident errors ({s} split)", result["most_confident_errors"][s])
                    for s in held_out
                )
            ),
            lambda: h.join(
                _examples_html(f"Most confident errors ({s} split)", result["most_confident_errors"][s])
                for s in held_out
            ),
        ),
        ReportSection(
            "hard_training_examples",
            "Hard training examples",
            63,
            {
                "train_wrong": result["train_wrong"][:SHOWN],
                "n_train_wrong": len(result["train_wrong"]),
                "train_dynamics": {**result["train_dynamics"], "late_or_never": late[:SHOWN]},
                "n_late_or_never": len(late),
            },
            lambda: train_renderable(result),
            lambda: train_html(result),
        ),
    ]
    return sections
