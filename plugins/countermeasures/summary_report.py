"""The report section of `mikiwame countermeasures`: RUN_DIR/countermeasures/summary.json as a table (terminal,
JSON, HTML through rich's export), shown in every reporter once the command has run."""

from __future__ import annotations

from typing import Annotated, Any

from rich.table import Table
from rich.text import Text

from mikiwame.framework import hookimpl
from mikiwame.framework.countermeasures import FOLDER, SUMMARY
from mikiwame.framework.results import ReportSection, RunResults
from mikiwame.framework.runfiles import AllOf, Between, Count, Obj, read_json

COLUMNS = (
    "countermeasure",
    "finding",
    "accuracy Δ [95%]",
    "macro-F1 Δ [95%]",
    "target",
    "before → after",
    "Δ [95%]",
    "verdict",
)
DELTA = Obj({"delta": float, "interval": Annotated[list[float], Between(2, 2)]})
ROW = Obj(
    {
        "countermeasure": str,
        "addresses": Obj({"finding": str}, {"unit": str | None}),
        "accuracy": DELTA,
        "macro_f1": DELTA,
        "target": AllOf(DELTA, Obj({"metric": str, "n": Count, "baseline": float, "after": float})),
        "verdict": str,
    }
)
SUMMARY_SCHEMA = Obj({"seeds": list[int], "rows": list[ROW]})  # type: ignore[valid-type]  # a schema, not a type
VERDICT_STYLE = {"helps": "green", "hurts": "red", "no clear change": "yellow"}


def _delta(figure: dict[str, Any]) -> str:
    low, high = figure["interval"]
    return f"{figure['delta']:+.3f} [{low:+.3f}, {high:+.3f}]"


def _runs_line(summary: dict[str, Any]) -> str:
    """How many re-runs the last command trained and how many it found finished (a repeat trains none)."""
    if "trained" not in summary:
        return ""
    return f"\nlast command: {summary['trained']} runs trained, {summary['reused']} found finished and reused"


def summary_table(summary: dict[str, Any]) -> Table:
    seeds = ", ".join(map(str, summary["seeds"]))
    table = Table(
        title=f"Countermeasures (seeds {seeds}; each against the same seeds' untreated runs)",
        title_justify="left",
        caption="Δ = after − before; intervals: paired bootstrap over the test texts (seeds averaged), "
        "or over the seeds for per-run figures" + _runs_line(summary),
    )
    for column in COLUMNS:
        table.add_column(column)
    for row in summary["rows"]:
        address, target = row["addresses"], row["target"]
        finding = address["finding"] + (f" {address['unit']}" if address.get("unit") else "")
        table.add_row(
            row["countermeasure"],
            Text(finding),
            _delta(row["accuracy"]),
            _delta(row["macro_f1"]),
            f"{target['metric']} (n={target['n']})",
            f"{target['baseline']:.3f} → {target['after']:.3f}",
            _delta(target),
            Text(row["verdict"], style=VERDICT_STYLE.get(row["verdict"], "")),
        )
    return table


def load_summary(results: RunResults) -> dict[str, Any] | None:
    """RUN_DIR/countermeasures/summary.json through its schema (None when the run has none): the report section
    and the findings read the same checked figures."""
    path = results.directory / FOLDER / SUMMARY
    return read_json(path, SUMMARY_SCHEMA) if path.is_file() else None


@hookimpl
def mikiwame_report_sections(results: RunResults) -> list[ReportSection]:
    summary = load_summary(results)
    if summary is None:
        return []
    return [ReportSection("countermeasures", "Countermeasures", 95, summary, lambda: summary_table(summary))]
