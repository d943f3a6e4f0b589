"""`calibration`: does the model's confidence (its top probability) match how often it is right?

The reliability diagram comes from `sklearn.calibration.calibration_curve` on (confidence, correct) with
equal-width bins; the expected calibration error is the bin-size-weighted mean gap |accuracy − confidence|
over those same bins, with a 95% bootstrap interval over examples. A histogram of the confidence of hits and
of errors shows whether the model's errors are confident ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import numpy as np
from rich.console import Group
from rich.table import Table

from mikiwame.framework import hookimpl, inert
from mikiwame.framework import html as h
from mikiwame.framework.analysis import AnalysisContext, Analyzer
from mikiwame.framework.findings import Finding
from mikiwame.framework.metrics import bootstrap_estimate
from mikiwame.framework.results import ESTIMATE, ReportSection, RunResults
from mikiwame.framework.runfiles import AnyOf, Between, Count, Fraction, Nullable, Obj
from mikiwame.plugins.analyzers.calibration_findings import calibration_findings

NAME = "calibration"
BINS = 10
SPLIT = Obj(
    {
        "n": Annotated[int, Between(1)],
        "ece": ESTIMATE,
        "accuracy": Fraction,
        "mean_confidence": Fraction,
        "overconfidence": Annotated[float, Between(-1, 1)],
        "reliability": list[Obj({"bin": str, "n": Count, "mean_confidence": Fraction, "accuracy": Fraction})],  # type: ignore[misc]
    },
    {"mean_confidence_hits": Nullable(Fraction), "mean_confidence_errors": Nullable(Fraction)},
)
RESULT = AnyOf(
    Obj({"splits": Annotated[dict[str, SPLIT], Between(1)], "figure": str}),  # type: ignore[valid-type]  # a schema
    Obj({"splits": Annotated[Obj(), Between(0, 0)], "message": str}),
)


def _bins(confidence: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Bin index of each example and the non-empty bins, exactly as calibration_curve bins (uniform)."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    ids = np.searchsorted(edges[1:-1], confidence)
    return ids, np.flatnonzero(np.bincount(ids, minlength=n_bins))


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, n_bins: int = BINS) -> float:
    from sklearn.calibration import calibration_curve  # here: a second of every command's start-up

    accuracy, mean_confidence = calibration_curve(correct, confidence, n_bins=n_bins, strategy="uniform")
    ids, present = _bins(confidence, n_bins)
    weights = np.bincount(ids, minlength=n_bins)[present] / len(confidence)
    return float(np.sum(weights * np.abs(accuracy - mean_confidence)))


def calibration_summary(
    confidence: np.ndarray, correct: np.ndarray, n_bins: int = BINS, seed: int = 0
) -> dict[str, Any]:
    """ECE with its interval, the reliability curve and the hit/error confidence histograms."""
    from sklearn.calibration import calibration_curve

    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=int)
    ece = expected_calibration_error(confidence, correct, n_bins)
    interval = bootstrap_estimate(
        (confidence, correct),
        lambda c, y: expected_calibration_error(c, y, n_bins),
        ece,
        seed,
        vectorized=False,
    )
    accuracy, mean_confidence = calibration_curve(correct, confidence, n_bins=n_bins, strategy="uniform")
    ids, present = _bins(confidence, n_bins)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return {
        "n": len(confidence),
        "n_bins": n_bins,
        "ece": interval.to_dict(),
        "accuracy": float(correct.mean()),
        "mean_confidence": float(confidence.mean()),
        "overconfidence": float(confidence.mean() - correct.mean()),
        "mean_confidence_hits": float(confidence[correct == 1].mean()) if correct.any() else None,
        "mean_confidence_errors": float(confidence[correct == 0].mean()) if (correct == 0).any() else None,
        "reliability": [
            {
                "bin": f"{edges[b]:.1f}–{edges[b + 1]:.1f}",
                "n": int(np.sum(ids == b)),
                "mean_confidence": float(c),
                "accuracy": float(a),
            }
            for b, a, c in zip(present, accuracy, mean_confidence, strict=True)
        ],
        "histogram": {
            "edges": edges.round(3).tolist(),
            "hits": np.histogram(confidence[correct == 1], bins=edges)[0].tolist(),
            "errors": np.histogram(confidence[correct == 0], bins=edges)[0].tolist(),
        },
    }


def save_plot(summary: dict[str, Any], split: str, path: Path) -> None:
    from mikiwame.framework import plots  # matplotlib, imported only to draw

    fig, (rel_ax, hist_ax) = plots.plt.subplots(1, 2, figsize=(9, 3.8))
    rel = summary["reliability"]
    rel_ax.plot([0, 1], [0, 1], ":", color="grey", label="perfect calibration")
    rel_ax.plot([r["mean_confidence"] for r in rel], [r["accuracy"] for r in rel], "-o", label="model")
    ece = summary["ece"]
    rel_ax.set(
        xlabel="confidence (top probability)",
        ylabel="accuracy",
        xlim=(0, 1),
        ylim=(0, 1),
        title=f"{split}: ECE {ece['value']:.3f} [{ece['low']:.3f}, {ece['high']:.3f}], n={summary['n']}",
    )
    rel_ax.legend(fontsize=8)
    edges = np.asarray(summary["histogram"]["edges"])
    centres, width = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
    hist_ax.bar(centres, summary["histogram"]["hits"], width=width, alpha=0.6, label="hits")
    hist_ax.bar(centres, summary["histogram"]["errors"], width=width, alpha=0.6, label="errors", color="C3")
    hist_ax.set(xlabel="confidence", ylabel="examples", title="confidence of hits and errors")
    hist_ax.legend(fontsize=8)
    plots.save_figure(fig, path)


class CalibrationAnalyzer(Analyzer):
    name = NAME
    description = "reliability diagram, expected calibration error, confidence of hits vs errors"

    def analyze(self, context: AnalysisContext) -> dict[str, Any]:
        splits: dict[str, Any] = {}
        for split in ("test", "validation"):
            rows = [p for p in context.predictions if p["split"] == split]
            if not rows:
                continue
            confidence = np.asarray([max(p["probabilities"].values()) for p in rows])
            correct = np.asarray([p["predicted"] == p["gold"] for p in rows], dtype=int)
            splits[split] = calibration_summary(confidence, correct, seed=int(context.results.config.get("seed", 0)))
        if not splits:
            return {"message": "the run has no validation or test predictions to calibrate", "splits": {}}
        split = next(iter(splits))
        figure = context.directory / "analyses" / "calibration.png"
        save_plot(splits[split], split, figure)
        return {"splits": splits, "figure": str(figure.relative_to(context.directory)), "plotted_split": split}


RELIABILITY_COLUMNS = ("confidence bin", "n", "mean confidence", "accuracy", "gap")


def _reliability_title(split: str, s: dict[str, Any]) -> tuple[str, str]:
    ece = s["ece"]
    return (
        f"Calibration ({split} split, n={s['n']}): ECE {ece['value']:.3f} [{ece['low']:.3f}, {ece['high']:.3f}]",
        f"accuracy {s['accuracy']:.3f}, mean confidence {s['mean_confidence']:.3f} "
        f"({'over' if s['overconfidence'] > 0 else 'under'}-confident by {abs(s['overconfidence']):.3f}); "
        f"mean confidence of hits {s['mean_confidence_hits'] or 0:.3f}, "
        f"of errors {s['mean_confidence_errors'] or 0:.3f}",
    )


def reliability_rows(s: dict[str, Any]) -> list[tuple[list[str], float]]:
    """(cells without the gap, gap) per confidence bin."""
    return [
        (
            [r["bin"], str(r["n"]), f"{r['mean_confidence']:.3f}", f"{r['accuracy']:.3f}"],
            r["accuracy"] - r["mean_confidence"],
        )
        for r in s["reliability"]
    ]


def reliability_table(split: str, s: dict[str, Any]) -> Table:
    title, caption = _reliability_title(split, s)
    table = Table(title=title, title_justify="left", caption=caption)
    for column in RELIABILITY_COLUMNS:
        table.add_column(column, justify="right")
    for cells, gap in reliability_rows(s):
        table.add_row(*cells, inert.text(f"{gap:+.3f}", style="red" if abs(gap) > 0.1 else ""))
    return table


def calibration_html(results: RunResults, result: dict[str, Any]) -> str:
    tables = []
    for split, s in result["splits"].items():
        title, caption = _reliability_title(split, s)
        rows = [
            [*cells, h.tag("span", f"{gap:+.3f}", h.BAD if abs(gap) > 0.1 else None)]
            for cells, gap in reliability_rows(s)
        ]
        tables.append(h.table(RELIABILITY_COLUMNS, rows, f"{title}; {caption}", numeric=range(5)))
    return h.join([*tables, h.image(results.directory, result["figure"], "reliability diagram")])


@hookimpl
def mikiwame_report_sections(results: RunResults) -> list[ReportSection]:
    result = results.analysis(NAME, RESULT)
    if result is None:
        return []
    if not result["splits"]:
        return [ReportSection(NAME, "Calibration", 90, result, lambda: inert.text(result["message"]))]

    def render() -> Group:
        tables = [reliability_table(split, s) for split, s in result["splits"].items()]
        return Group(*tables, inert.text(f"reliability diagram and histogram: {results.directory / result['figure']}"))

    return [ReportSection(NAME, "Calibration", 90, result, render, lambda: calibration_html(results, result))]


@hookimpl
def mikiwame_register_analyzers(register):
    register(CalibrationAnalyzer())


@hookimpl
def mikiwame_findings(results: RunResults) -> list[Finding]:
    result = results.analysis(NAME, RESULT)
    return [] if result is None else calibration_findings(results, result)
