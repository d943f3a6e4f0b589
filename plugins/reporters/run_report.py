"""Report sections every run has: model information, data checks, before/after, sklearn's classification
report and the confusion matrix. Built on the same report-section hook an outside plugin uses."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table

from mikiwame.framework import hookimpl, inert
from mikiwame.framework import html as h
from mikiwame.framework.figures import with_interval
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
    ("new weights", "new_weights"),
)


def model_rows(info: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, value) rows of the model-information table, the fallback row excepted."""
    rows = [(label, str(info[key])) for label, key in MODEL_ROWS if info.get(key) is not None]
    total, trainable = info.get("parameters_total"), info.get("parameters_trainable")
    if total and trainable is not None:  # a classifier counts its parameters only once fitted
        rows.append(("parameters", f"{total:,} total, {trainable:,} trainable ({100 * trainable / total:.2f}%)"))
    if info.get("saved_bytes") is not None:
        rows.append(("saved method size", f"{info['saved_bytes'] / 1024:,.1f} KiB (model/, without tokenizer)"))
    return rows


def fallback_text(info: dict[str, Any]) -> str:
    return f"YES: {info.get('fallback_reason', '')}"


def model_table(info: dict[str, Any]) -> Table:
    table = Table(title="Model", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for label, value in model_rows(info):
        table.add_row(label, inert.text(str(value)))
    if info.get("fallback"):
        table.add_row("fallback", inert.text(fallback_text(info), style="bold red"))
    return table


def model_html(info: dict[str, Any]) -> str:
    rows: list[tuple[str, Any]] = list(model_rows(info))
    if info.get("fallback"):
        rows.append(("fallback", h.tag("strong", fallback_text(info), h.BAD)))
    notes = [h.paragraph(n, h.NOTE) for n in info.get("notes") or []]
    return h.join([h.key_value_table(rows), *notes])


def metrics_rows(columns: dict[str, dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """Headers and rows of the before/after table; with two columns the last cell is (change, improved)."""
    headers = ["metric (95% CI)", *(f"{name} (n={m['n']})" for name, m in columns.items())]
    if len(columns) == 2:
        headers.append("change")
    rows = []
    for label, key in (("accuracy", "accuracy"), ("macro-F1", "macro_f1"), ("loss", "loss")):
        values = [m[key] for m in columns.values()]
        row: list[Any] = [label, *(with_interval(v, "{:.3f}") for v in values)]
        if len(values) == 2:
            delta = values[1]["value"] - values[0]["value"]
            row.append((f"{delta:+.3f}", delta < 0 if key == "loss" else delta > 0))
        rows.append(row)
    return headers, rows


def metrics_table(title: str, columns: dict[str, dict[str, Any]]) -> Table:
    """Accuracy, macro-F1 and loss with 95% intervals, one column per evaluation, n in the header."""
    headers, rows = metrics_rows(columns)
    table = Table(title=title, title_justify="left")
    table.add_column(headers[0], style="bold")
    for header in headers[1:]:
        table.add_column(header, justify="right")
    for row in rows:
        cells = [inert.text(c[0], style="green" if c[1] else "red") if isinstance(c, tuple) else c for c in row]
        table.add_row(*cells)
    return table


def metrics_html(caption: str, columns: dict[str, dict[str, Any]]) -> str:
    headers, rows = metrics_rows(columns)
    cells = [[h.tag("span", c[0], h.GOOD if c[1] else h.BAD) if isinstance(c, tuple) else c for c in r] for r in rows]
    return h.table(headers, cells, caption, numeric=range(1, len(headers)))


def confusion_table(metrics: dict[str, Any], title: str) -> Table:
    labels, matrix = metrics["labels"], metrics["confusion_matrix"]
    table = Table(title=title, title_justify="left")
    table.add_column("gold \\ predicted", style="bold")
    for label in labels:
        table.add_column(inert.text(label), justify="right")
    for i, (label, row) in enumerate(zip(labels, matrix, strict=True)):
        cells = [
            inert.text(str(v), style="bold green" if i == j else ("red" if v else "dim")) for j, v in enumerate(row)
        ]
        table.add_row(inert.text(label), *cells)
    return table


def confusion_html(metrics: dict[str, Any], caption: str, figure: Any) -> str:
    labels = metrics["labels"]
    rows = [
        [
            h.tag("strong", label),
            *(h.tag("span", v, h.GOOD if i == j else (h.BAD if v else None)) for j, v in enumerate(r)),
        ]
        for i, (label, r) in enumerate(zip(labels, metrics["confusion_matrix"], strict=True))
    ]
    return h.join([h.table(["gold \\ predicted", *labels], rows, caption, numeric=range(1, len(labels) + 1)), figure])


def label_count_rows(checks: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    splits = list(checks.get("label_counts", {}))
    rows = [
        [label, *(str(checks["label_counts"][s].get(label, 0)) for s in splits)] for label in checks.get("labels", [])
    ]
    rows.append(["total", *(str(sum(checks["label_counts"][s].values())) for s in splits)])
    return ["label", *splits], rows


def data_checks_renderable(checks: dict[str, Any]) -> Group:
    """Label counts per split, then one line each for duplicates and truncation."""
    headers, rows = label_count_rows(checks)
    table = Table(title=inert.text(f"Data: {checks.get('source', '')}"), title_justify="left")
    table.add_column(headers[0], style="bold")
    for s in headers[1:]:
        table.add_column(s, justify="right")
    for row in rows:
        table.add_row(*map(inert.text, row), style="bold" if row is rows[-1] else None)
    return Group(table, *(inert.text(note) for note in data_check_notes(checks)))


def data_checks_html(checks: dict[str, Any]) -> str:
    headers, rows = label_count_rows(checks)
    table = h.table(headers, rows, f"Data: {checks.get('source', '')}", numeric=range(1, len(headers)))
    return h.join([table, *(h.paragraph(note) for note in data_check_notes(checks))])


def data_check_notes(checks: dict[str, Any]) -> list[str]:
    """One line each for duplicates and truncation."""
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
    return notes


def pending_line(results: RunResults) -> str:
    """One line for a run stopped while its live analyzers ran: which are missing and the command that adds them."""
    names = ",".join(results.pending_analyses)
    return (
        f"analyses incomplete: the run stopped before analyzer(s) {names} finished; "
        f"add them with: mikiwame analyze {results.directory} {names}"
    )


@hookimpl
def mikiwame_report_sections(results: RunResults) -> list[ReportSection]:
    m = results.metrics
    sections = (
        []
        if not results.pending_analyses
        else [
            ReportSection(
                "analyses_incomplete",
                "Analyses incomplete",
                5,
                {"pending_analyses": results.pending_analyses, "line": pending_line(results)},
                lambda: inert.text(pending_line(results), style="bold yellow"),
                lambda: h.paragraph(pending_line(results)),
            )
        ]
    )
    sections += [
        ReportSection(
            "model",
            "Model information",
            10,
            results.model_info,
            lambda: model_table(results.model_info),
            lambda: model_html(results.model_info),
        ),
        ReportSection(
            "data",
            "Data checks",
            20,
            results.data_checks,
            lambda: data_checks_renderable(results.data_checks),
            lambda: data_checks_html(results.data_checks),
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
            lambda: metrics_html(f"Before / after fine-tuning, {split} split", columns),
        ),
        ReportSection(
            "classification_report",
            f"Classification report ({split})",
            40,
            after["classification_report"],
            lambda: Group(
                inert.text(f"classification_report, {split} split, after fine-tuning", style="bold"),
                inert.text(after["classification_report_text"]),
            ),
            lambda: h.join(
                [
                    h.paragraph(f"sklearn classification_report, {split} split, after fine-tuning"),
                    h.tag("pre", after["classification_report_text"]),
                ]
            ),
        ),
        ReportSection(
            "confusion_matrix",
            f"Confusion matrix ({split})",
            50,
            {"labels": after["labels"], "matrix": after["confusion_matrix"]},
            lambda: confusion_table(after, f"Confusion matrix, {split} split (rows: gold)"),
            lambda: confusion_html(
                after,
                f"Confusion matrix, {split} split (rows: gold)",
                h.image(results.directory, "plots/confusion_matrix.png", "confusion matrix"),
            ),
        ),
    ]
    return sections
