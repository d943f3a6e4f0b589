"""Rendering a PEFT comparison (studies/peft_comparison.py) from its JSON: one rich table, a CSV with one row
per method, and a PNG chart. Nothing here computes a figure; everything comes from comparison.json, so a saved
comparison can be re-rendered."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from mikiwame.framework.discussion import findings_renderable, write_findings  # noqa: E402
from mikiwame.framework.findings import default_lang  # noqa: E402
from mikiwame.studies.peft_comparison_findings import comparison_findings  # noqa: E402

CSV_COLUMNS = (
    "method",
    "family",
    "lr",
    "parameters_trainable",
    "parameters_total",
    "trainable_percent",
    "saved_bytes",
    "peak_rss_bytes",
    "peak_cuda_bytes",
    "samples_per_second",
    "wall_seconds",
    "validation_accuracy",
    "validation_macro_f1",
    "test_accuracy",
    "test_macro_f1",
    "before_test_accuracy",
)


def _pm(stat: dict[str, float] | None, digits: int = 3, scale: float = 1.0) -> str:
    if stat is None:
        return "-"
    return f"{stat['mean'] * scale:.{digits}f} ± {stat['std'] * scale:.{digits}f}"


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return ""


def _delta(c: dict[str, Any]) -> str:
    q = c.get("mcnemar_p_adjusted", c["mcnemar_p"])
    return f"{c['difference']:+.3f} [{c['low']:+.3f}, {c['high']:+.3f}] p={q:.3g}"


def comparison_table(result: dict[str, Any]) -> Table:
    seeds = len(result["seeds"])
    gpu = any(row["peak_cuda_bytes"] for row in result["methods"])
    table = Table(
        title=f"PEFT comparison: task {result['task']}, model {result['model']}, {seeds} seeds, "
        f"test n={result['test_n']} (mean ± std over seeds)",
        title_justify="left",
        caption=f"LR chosen by {result['selection']} from each method's grid; Δ: accuracy difference, 95% paired "
        "bootstrap over test texts, McNemar exact p (first seed, Benjamini-Hochberg adjusted)",
        caption_justify="left",
    )
    for name in (
        "method",
        "family",
        "LR (grid)",
        "trainable",
        "saved",
        "peak memory" + (" (GPU)" if gpu else " (RSS)"),
    ):
        table.add_column(name)
    for name in ("samples/s", "wall s", "val acc", "val F1", "test acc", "test F1"):
        table.add_column(name, justify="right")
    table.add_column("Δ vs best", justify="right")
    table.add_column("Δ vs before", justify="right")
    for row in result["methods"]:
        memory = row["peak_cuda_bytes"] if gpu else row["peak_rss_bytes"]
        grid = ", ".join(f"{lr:.2g}" for lr in row["lr_grid"])
        table.add_row(
            row["method"],
            row["family"],
            f"{row['lr']:.2g} ({grid})",
            f"{row['parameters_trainable']:,} ({row['trainable_percent']:.2f}%)",
            _size(row["saved_bytes"]),
            _size(memory["mean"]),
            _pm(row["samples_per_second"], 0),
            _pm(row["wall_seconds"], 0),
            _pm(row["validation_accuracy"]),
            _pm(row["validation_macro_f1"]),
            _pm(row["test_accuracy"]),
            _pm(row["test_macro_f1"]),
            "reference" if row["vs_best"]["reference"] == row["method"] else _delta(row["vs_best"]),
            _delta(row["vs_before"]),
        )
    return table


def _csv_value(row: dict[str, Any], column: str) -> Any:
    value = row.get(column)
    return value["mean"] if isinstance(value, dict) else value


def write_files(result: dict[str, Any], directory: Path) -> list[Path]:
    """comparison.json (everything, per run), comparison.csv (one row per method), comparison.png and
    findings.json (the comparison's findings, 考察)."""
    json_path, csv_path, png_path = (directory / f"comparison.{ext}" for ext in ("json", "csv", "png"))
    json_path.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    with csv_path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        stds = [c for c in CSV_COLUMNS if isinstance(result["methods"][0].get(c), dict)] if result["methods"] else []
        writer.writerow([*CSV_COLUMNS, *(f"{c}_std" for c in stds), "seeds"])
        for row in result["methods"]:
            writer.writerow(
                [_csv_value(row, c) for c in CSV_COLUMNS] + [row[c]["std"] for c in stds] + [len(result["seeds"])]
            )
    save_chart(result, png_path)
    return [json_path, csv_path, png_path, write_findings(directory, comparison_findings(result))]


def save_chart(result: dict[str, Any], path: Path) -> None:
    """Test accuracy (mean ± std over seeds) per method, and against the share of trainable parameters."""
    rows = result["methods"]
    names = [r["method"] for r in rows]
    means = [r["test_accuracy"]["mean"] for r in rows]
    stds = [r["test_accuracy"]["std"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    left.bar(names, means, yerr=stds, capsize=4, color="tab:blue")
    left.set_ylabel("test accuracy")
    left.set_ylim(0, 1)
    left.tick_params(axis="x", rotation=45)
    left.set_title("test accuracy, mean ± std")
    right.errorbar([r["trainable_percent"] for r in rows], means, yerr=stds, fmt="o", capsize=4)
    for r, m in zip(rows, means, strict=True):
        right.annotate(r["method"], (r["trainable_percent"], m), textcoords="offset points", xytext=(4, 4))
    right.set_xscale("log")
    right.set_xlabel("trainable parameters (% of total, log scale)")
    right.set_ylabel("test accuracy")
    right.set_title("accuracy vs trainable share")
    fig.suptitle(f"{result['task']} / {result['model']}: n={result['test_n']} test texts, {len(result['seeds'])} seeds")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def console() -> Console:
    """Wide enough for the table in a log file or a narrow terminal."""
    return Console(width=250)


def render(result: dict[str, Any], files: list[Path], out: Console) -> None:
    """The findings (考察) first, in the comparison's `--lang`, then the table."""
    lang = result.get("config", {}).get("lang") or default_lang()
    out.print(findings_renderable(comparison_findings(result), lang))
    out.print(comparison_table(result))
    for path in files:
        out.print(f"wrote {path}")
