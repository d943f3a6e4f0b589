"""How `mikiwame compare` shows its result: per comparison a table of the paired figures, the configuration
differences, and the findings, in the terminal (rich, every string from a run through framework/inert.py) or
as JSON. framework/compare.py computes; this only renders."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from rich.console import Group
from rich.table import Table

from . import inert
from .discussion import findings_renderable
from .findings import Finding

FORMATS = ("terminal", "json")


def _delta(figure: dict[str, Any]) -> str:
    low, high = figure["interval"]
    return f"{figure['delta']:+.3f} [{low:+.3f}, {high:+.3f}]"


def comparison_table(result: dict[str, Any]) -> Table:
    """One comparison: accuracy (with McNemar's discordant counts and p), macro-F1, then F1 per label."""
    test = result["accuracy"]["mcnemar"]
    table = Table(
        title=inert.text(f"{result['b']} vs {result['a']} on the same {result['n']} test texts"),
        title_justify="left",
        caption="Δ = second − first; [95%]: paired bootstrap over the texts",
    )
    for column, justify in (("figure", "left"), ("first", "right"), ("second", "right"), ("Δ [95%]", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    table.add_column("test")
    acc = result["accuracy"]
    table.add_row(
        "accuracy",
        f"{acc['a']:.3f}",
        f"{acc['b']:.3f}",
        _delta(acc),
        inert.text(
            f"McNemar exact: only first right {test['only_a']}, only second right {test['only_b']}, p={test['p']:.2g}"
        ),
    )
    f1 = result["macro_f1"]
    table.add_row("macro-F1", f"{f1['a']:.3f}", f"{f1['b']:.3f}", _delta(f1), "")
    for row in result["per_class_f1"]:
        table.add_row(
            inert.text(f"F1 {row['label']} (n={row['n']})"), f"{row['a']:.3f}", f"{row['b']:.3f}", _delta(row), ""
        )
    return table


def differences_table(runs: list[dict[str, Any]], differences: list[dict[str, Any]]) -> Table:
    table = Table(title="Configuration differences", title_justify="left")
    table.add_column("key")
    for run in runs:
        table.add_column(inert.text(run["name"]))
    for row in differences:
        table.add_row(inert.text(row["key"]), *(inert.text(inert.json_text(v)) for v in row["values"]))
    return table


def renderable(comparison: dict[str, Any], lang: str) -> Group:
    runs = comparison["runs"]
    listed = ", ".join(f"{r['name']} ({r['directory']})" for r in runs)
    parts: list[Any] = [inert.text(f"runs: {listed}")]
    if comparison["config_differences"]:
        parts.append(differences_table(runs, comparison["config_differences"]))
    else:
        parts.append(inert.text("Configuration differences: none (the same config.json apart from name and folder)"))
    for result in comparison["comparisons"]:
        parts.append(comparison_table(result))
        parts.append(findings_renderable([Finding.from_dict(f) for f in result["findings"]], lang))
    return Group(*parts)


def render(comparison: dict[str, Any], output_format: str, lang: str, output: Path | None) -> None:
    """To the terminal, or with `output` to that file (the terminal format as plain text)."""
    if output_format == "json":
        text = inert.json_text(comparison, indent=2) + "\n"
        if output is None:
            print(text, end="")
        else:
            output.write_text(text, encoding="utf-8")
        return
    if output is None:
        inert.console().print(renderable(comparison, lang))
        return
    buffer = io.StringIO()
    inert.console(file=buffer, width=160, color_system=None).print(renderable(comparison, lang))
    output.write_text(buffer.getvalue(), encoding="utf-8")
