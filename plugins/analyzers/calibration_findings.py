"""Findings of `calibration`, from its saved JSON: whether the model's mean confidence differs from its
accuracy on the same texts (a binomial test of the hits against the mean confidence; the ECE with its bootstrap
interval is shown beside it, not tested: it is above 0 on any finite sample)."""

from __future__ import annotations

from typing import Any

from mikiwame.framework.findings import Claim, Evidence, Finding, conclude
from mikiwame.framework.results import RunResults

SOURCE = "calibration"


def split_finding(results: RunResults, split: str, s: dict[str, Any]) -> Finding:
    from scipy import stats

    n, accuracy, confidence = s["n"], s["accuracy"], s["mean_confidence"]
    over = confidence > accuracy
    p = stats.binomtest(round(accuracy * n), n, min(max(confidence, 0.0), 1.0)).pvalue
    ece = s["ece"]
    claim = Claim(
        f"{split} ではモデルは{'自信過剰' if over else '自信不足'}である：平均確信度 {confidence:.3f} に対し"
        f"正解率は {accuracy:.3f}（n={n}）。",
        f"On {split} the model is {'over' if over else 'under'}-confident: mean confidence {confidence:.3f} against "
        f"accuracy {accuracy:.3f} (n={n}).",
        f"{split} でモデルは{'自信過剰' if over else '自信不足'}の可能性がある（平均確信度 {confidence:.3f}、"
        f"正解率 {accuracy:.3f}、この n では区別できない）。",
        f"The model may be {'over' if over else 'under'}-confident on {split} (mean confidence {confidence:.3f}, "
        f"accuracy {accuracy:.3f}; not distinguishable at this n).",
    )
    evidence = [
        Evidence("accuracy − mean confidence", accuracy - confidence, n, None, "binomial test of the hits", p),
        Evidence("ECE", ece["value"], n, (ece["low"], ece["high"]), "bootstrap 95%"),
    ]
    return conclude(
        claim,
        evidence,
        [0.0, None],
        scope=f"{split} split, this run's model",
        source=SOURCE,
        decide_by="evaluate on more texts (a larger test split), or re-run with another --seed and compare",
        tags=("calibration",),
    )


def calibration_findings(results: RunResults, result: dict[str, Any]) -> list[Finding]:
    return [split_finding(results, split, s) for split, s in result.get("splits", {}).items() if s.get("n")]
