"""Findings of `token-stats`, from its saved JSON: word–label counts are facts about the training data, never
about the model (a correlation in the data says nothing of what the model uses). A unit over-represented in a
label is a fact when its Benjamini–Hochberg q-value (already in the JSON) is below the level; the strongest
unit of a label that is not significant is a possibility. That the model relies on a significant unit is a
possibility until deletion (the `shortcuts` analyzer) measures it."""

from __future__ import annotations

from typing import Any

from mikiwame.framework.findings import Claim, Evidence, Finding, conclude, possibility
from mikiwame.framework.metrics import wilson_interval
from mikiwame.framework.results import RunResults

SOURCE = "token-stats"
PER_LABEL = 2  # significant units stated per label


def unit_finding(results: RunResults, result: dict[str, Any], label: str, row: dict[str, Any]) -> Finding:
    unit, k, n, prior = row["unit"], row["k"], row["n"], result["prior"].get(label, 0.0)
    claim = Claim(
        f"学習データでは「{unit}」を含む {n} 文のうち {k} 文が「{label}」で、全体の割合 {prior:.2f} より多い"
        "（データについての事実）。",
        f"In the training data, {k} of the {n} texts containing 「{unit}」 are labelled '{label}', more than its "
        f"share {prior:.2f} overall (a fact about the data).",
        f"学習データで「{unit}」は「{label}」に偏っている可能性がある（{n} 文中 {k} 文、多重比較補正後は有意でない）。",
        f"「{unit}」 may be associated with '{label}' in the training data ({k} of {n} texts; not significant after "
        "the multiple-comparison correction).",
    )
    evidence = [
        Evidence(
            f"share of texts with 「{unit}」 labelled {label}", row["purity"], n, wilson_interval(k, n), "Wilson 95%"
        ),
        Evidence(
            f"z of 「{unit}」 for {label}",
            row["z"],
            n,
            None,
            f"z-test against the prior, BH-adjusted over {result['tests']} tests",
            row["q"],
        ),
    ]
    return conclude(
        claim,
        evidence,
        [None, 0.0],
        scope="training split (the data, not the model)",
        source=SOURCE,
        decide_by="count again on more training texts (--train-size larger, or --data with more texts)",
        tags=("data",),
    )


def reliance_finding(results: RunResults, label: str, row: dict[str, Any]) -> Finding:
    unit = row["unit"]
    return possibility(
        f"モデルは「{unit}」を「{label}」の手がかりとして使っている可能性がある（データの偏りからの推測で、"
        "削除による確認はまだない）。",
        f"The model may use 「{unit}」 as a cue for '{label}' (inferred from the data's skew; no deletion has "
        "measured it yet).",
        [],
        scope="this run's model",
        source=SOURCE,
        decide_by=f"mikiwame analyze {results.directory} shortcuts (deletes the unit and counts flipped predictions)",
        tags=("explanation",),
    )


def token_stats_findings(results: RunResults, result: dict[str, Any]) -> list[Finding]:
    found = []
    deletion_measured = "shortcuts" in results.analyses
    for label, rows in result.get("top", {}).items():
        significant = [r for r in rows if r["significant"]][:PER_LABEL]
        for row in significant or rows[:1]:
            found.append(unit_finding(results, result, label, row))
        if significant and not deletion_measured:
            found.append(reliance_finding(results, label, significant[0]))
    return found
