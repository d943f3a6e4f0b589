"""Findings of `mikiwame countermeasures`, from RUN_DIR/countermeasures/summary.json: each row's target figure
(the shift-set accuracy, a flip rate, the validation-loss rise, ...) after − before, paired over texts and
seeds. A cure changed its target only when that interval excludes 0 (a fact, measured by an intervention: the
same configuration retrained with and without it); otherwise a possibility that more seeds would decide. The
accuracy change is shown beside it as context (the verdict weighs it; a claim about it alone is compare's)."""

from __future__ import annotations

from typing import Any

from mikiwame.framework import hookimpl
from mikiwame.framework.findings import Claim, Evidence, Finding, conclude
from mikiwame.framework.results import RunResults
from mikiwame.plugins.countermeasures.summary_report import load_summary

SOURCE = "countermeasures"
MORE_SEEDS = 2


def _evidence(metric: str, figure: dict[str, Any], test: str) -> Evidence:
    return Evidence(metric, figure["delta"], figure["n"], tuple(figure["interval"]), test)


def _claim(row: dict[str, Any]) -> Claim:
    cure, target = row["countermeasure"], row["target"]
    address = row["addresses"]
    finding = address["finding"] + (f" 「{address['unit']}」" if address.get("unit") else "")
    low, high = target["interval"]
    change = f"{target['baseline']:.3f} → {target['after']:.3f}, Δ {target['delta']:+.3f} [{low:+.3f}, {high:+.3f}]"
    up = target["delta"] > 0
    return Claim(
        f"対策 {cure} は、{finding} の指標「{target['metric']}」を{'上げた' if up else '下げた'}（{change}）。",
        f"Countermeasure {cure} {'raised' if up else 'lowered'} the {target['metric']} of the {finding} finding "
        f"({change}).",
        f"対策 {cure} は {finding} の指標「{target['metric']}」を変えた可能性があるが、この差（{change}）は偶然の"
        "範囲を超えていない。",
        f"Countermeasure {cure} may change the {target['metric']} of the {finding} finding, but the difference "
        f"({change}) is within chance.",
    )


def row_finding(results: RunResults, summary: dict[str, Any], row: dict[str, Any]) -> Finding:
    """One countermeasure against one finding: its target figure decides (null: no change), accuracy is context."""
    seeds = summary["seeds"]
    return conclude(
        _claim(row),
        [
            _evidence(
                row["target"]["metric"] + " Δ (after − before)",
                row["target"],
                "paired bootstrap over texts and seeds (over seeds for a figure measured once per run)",
            ),
            _evidence("test accuracy Δ (after − before)", row["accuracy"], "paired bootstrap over texts and seeds"),
        ],
        [0.0, None],
        scope=f"re-runs of {results.name} with and without {row['countermeasure']}, seeds "
        f"{', '.join(map(str, seeds))} (verdict: {row['verdict']})",
        source=SOURCE,
        decide_by=f"mikiwame countermeasures {results.directory} --only {row['countermeasure']} "
        f"--seeds {len(seeds) + MORE_SEEDS} (more paired re-runs)",
        tags=("intervention", "countermeasure", row["addresses"]["finding"]),
    )


@hookimpl
def mikiwame_findings(results: RunResults) -> list[Finding]:
    summary = load_summary(results)
    return [] if summary is None else [row_finding(results, summary, row) for row in summary["rows"]]
