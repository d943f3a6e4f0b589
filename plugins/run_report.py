"""Report sections every run has: model information, data checks, before/after, sklearn's classification
report and the confusion matrix. Built on the same report-section hook an outside plugin uses."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from mikiwame.framework import hookimpl
from mikiwame.framework.results import ReportSection, RunResults

MODEL_ROWS = (
    ("model", "name"),
    ("requested", "requested"),
    ("source", "source"),
    ("architecture", "architecture"),
    ("PEFT method", "peft"),
    ("learning rate", "learning_rate"),
    ("layers", "layers"),
    ("hidden size", "hidden"),
    ("attention heads", "heads"),
    ("vocabulary", "vocabulary"),
    ("max positions", "max_positions"),
    ("tokenizer", "tokenizer"),
    ("word tokenizer", "word_tokenizer"),
    ("pre-training data", "pretraining_data"),
)


def model_table(info: dict[str, Any]) -> Table:
    table = Table(title="Model", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    total, trainable = info.get("parameters_total"), info.get("parameters_trainable")
    for label, key in MODEL_ROWS:
        if info.get(key) is not None:
            table.add_row(label, str(info[key]))
    if total:  # a classifier counts its parameters only once fitted
        table.add_row("parameters", f"{total:,} total, {trainable:,} trainable ({100 * trainable / total:.2f}%)")
    if info.get("saved_bytes") is not None:
        table.add_row("saved method size", f"{info['saved_bytes'] / 1024:,.1f} KiB (model/, without tokenizer)")
    if info.get("fallback"):
        table.add_row("fallback", Text(f"YES: {info.get('fallback_reason', '')}", style="bold red"))
    return table


def estimate(e: dict[str, Any], digits: int = 3) -> str:
    if e["low"] == e["high"] == e["value"] and e.get("method") == "point":
        return f"{e['value']:.{digits}f}"
    return f"{e['value']:.{digits}f} [{e['low']:.{digits}f}, {e['high']:.{digits}f}]"


def metrics_table(title: str, columns: dict[str, dict[str, Any]]) -> Table:
    """Accuracy, macro-F1 and loss with 95% intervals, one column per evaluation, n in the header."""
    table = Table(title=title, title_justify="left")
    table.add_column("metric (95% CI)", style="bold")
    for name, m in columns.items():
        table.add_column(f"{name} (n={m['n']})", justify="right")
    if len(columns) == 2:
        table.add_column("change", justify="right")
    for label, key in (("accuracy", "accuracy"), ("macro-F1", "macro_f1"), ("loss", "loss")):
        values = [m[key] for m in columns.values()]
        row = [estimate(v) for v in values]
        if len(values) == 2:
            delta = values[1]["value"] - values[0]["value"]
            good = delta < 0 if key == "loss" else delta > 0
            row.append(Text(f"{delta:+.3f}", style="green" if good else "red"))
        table.add_row(label, *row)
    return table


def confusion_table(metrics: dict[str, Any], title: str) -> Table:
    labels, matrix = metrics["labels"], metrics["confusion_matrix"]
    table = Table(title=title, title_justify="left")
    table.add_column("gold \\ predicted", style="bold")
    for label in labels:
        table.add_column(label, justify="right")
    for i, (label, row) in enumerate(zip(labels, matrix, strict=True)):
        cells = [Text(str(v), style="bold green" if i == j else ("red" if v else "dim")) for j, v in enumerate(row)]
        table.add_row(label, *cells)
    return table


def data_checks_renderable(checks: dict[str, Any]) -> Group:
    """Label counts per split, then one line each for duplicates and truncation."""
    splits = list(checks.get("label_counts", {}))
    table = Table(title=f"Data: {checks.get('source', '')}", title_justify="left")
    table.add_column("label", style="bold")
    for s in splits:
        table.add_column(s, justify="right")
    for label in checks.get("labels", []):
        table.add_row(label, *(str(checks["label_counts"][s].get(label, 0)) for s in splits))
    table.add_row("total", *(str(sum(checks["label_counts"][s].values())) for s in splits), style="bold")
    notes = []
    dup = checks.get("duplicates", {})
    if dup:
        notes.append(
            f"duplicate texts (exact / NFKC-normalised): within a split {dup['exact_within_split']} / "
            f"{dup['normalised_within_split']}, across splits {dup['exact_across_splits']} / "
            f"{dup['normalised_across_splits']}"
        )
    cut = checks.get("truncation")
    if cut:
        notes.append(
            f"texts over {cut['max_length']} tokens (truncated): {sum(cut['truncated'].values())}; "
            f"longest {cut['longest_tokens']} tokens"
        )
    return Group(table, *(Text(note) for note in notes))


@hookimpl
def mikiwame_report_sections(results: RunResults) -> list[ReportSection]:
    m = results.metrics
    sections = [
        ReportSection("model", "Model information", 10, results.model_info, lambda: model_table(results.model_info)),
        ReportSection(
            "data", "Data checks", 20, results.data_checks, lambda: data_checks_renderable(results.data_checks)
        ),
    ]
    split = "test" if "test" in m.get("after", {}) else next(iter(m.get("after", {})), None)
    if split is None:
        return sections
    after = m["after"][split]
    columns = {"before": m["before"][split], "after": after} if split in m.get("before", {}) else {"after": after}
    sections += [
        ReportSection(
            "before_after",
            f"Before and after fine-tuning ({split})",
            30,
            {k: {x: v[x] for x in ("n", "accuracy", "macro_f1", "loss")} for k, v in columns.items()},
            lambda: metrics_table(f"Before / after fine-tuning, {split} split", columns),
        ),
        ReportSection(
            "classification_report",
            f"Classification report ({split})",
            40,
            after["classification_report"],
            lambda: Group(
                Text(f"classification_report, {split} split, after fine-tuning", style="bold"),
                Text(after["classification_report_text"]),
            ),
        ),
        ReportSection(
            "confusion_matrix",
            f"Confusion matrix ({split})",
            50,
            {"labels": after["labels"], "matrix": after["confusion_matrix"]},
            lambda: confusion_table(after, f"Confusion matrix, {split} split (rows: gold)"),
        ),
    ]
    return sections
