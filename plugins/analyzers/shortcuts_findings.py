"""Findings of the `shortcuts` analyzer, from its saved JSON: deletion is an intervention, so what it measured
about the model is a fact when its Wilson interval excludes the null. A flagged unit (the relied-on rule met)
is a fact with its flip counts, null: no flip; a pure unit whose deletion was tested but not flagged is a fact
"not relied on" when its interval lies below the rule's flip rate, else a possibility. Why the model learned a
unit (a source's tagging convention, ...) is always a possibility."""

from __future__ import annotations

from typing import Any

from mikiwame.framework.discussion import COUNTERMEASURES
from mikiwame.framework.findings import Claim, Evidence, Finding, conclude, possibility
from mikiwame.framework.metrics import wilson_interval
from mikiwame.framework.results import RunResults

SOURCE = "shortcuts"


def _deletion(row: dict[str, Any]) -> Evidence:
    flips = row["deletion_flip_rate"]
    return Evidence(
        f"deletion flip rate of 「{row['unit']}」",
        flips["rate"],
        flips["n"],
        (flips["low"], flips["high"]),
        "Wilson 95%",
    )


def _purity(row: dict[str, Any]) -> Evidence:
    n = row["train_count"]
    k = round(row["train_purity"] * n)
    interval = wilson_interval(k, n) if n else (0.0, 1.0)
    return Evidence(
        f"training texts with 「{row['unit']}」 labelled {row['label']}", row["train_purity"], n, interval, "Wilson 95%"
    )


def deletion_finding(results: RunResults, row: dict[str, Any], claim: Claim, null: float) -> Finding:
    """What deleting the unit measured, tested against `null` (no flip for a flagged unit; the rule's flip rate
    for a pure unit the rule did not flag)."""
    return conclude(
        claim,
        [_deletion(row), _purity(row)],
        [null, None],
        scope=f"held-out texts predicted as {row['label']} that contain 「{row['unit']}」",
        source=SOURCE,
        decide_by=f"mikiwame analyze {results.directory} shortcuts --shortcuts-max-texts 5000 on a larger test split "
        "(more texts containing the unit)",
        tags=("intervention", "shortcut"),
    )


def relies_claim(row: dict[str, Any]) -> Claim:
    unit, label, flips = row["unit"], row["label"], row["deletion_flip_rate"]
    return Claim(
        f"「{unit}」を削除すると、「{label}」と予測された {flips['n']} 件のうち {flips['k']} 件で予測が変わった。"
        f"モデルはこの語に頼っている（学習データでこの語を含む文の {row['train_purity']:.0%} が「{label}」）。",
        f"Deleting 「{unit}」 flipped {flips['k']} of {flips['n']} predictions of '{label}': the model relies on it "
        f"({row['train_purity']:.0%} of the training texts containing it are labelled '{label}').",
        f"モデルは「{unit}」に頼っている可能性がある（削除で {flips['n']} 件中 {flips['k']} 件が変化）。",
        f"The model may rely on 「{unit}」 (deleting it flipped {flips['k']} of {flips['n']} predictions).",
    )


def unconfirmed_finding(results: RunResults, row: dict[str, Any], min_flip_rate: float) -> Finding:
    """A pure unit whose deletion did not meet the rule: 'not relied on' when its interval lies below the rule's
    flip rate, a possibility when it straddles it (one above it would have been flagged, unless folded)."""
    unit, label, flips = row["unit"], row["label"], row["deletion_flip_rate"]
    if flips["rate"] >= min_flip_rate:
        return deletion_finding(results, row, relies_claim(row), min_flip_rate)
    claim = Claim(
        f"「{unit}」は学習データでは「{label}」に偏るが、削除しても {flips['n']} 件中 {flips['k']} 件しか予測が"
        f"変わらず、モデルはこの語に頼っていない（変化率は {min_flip_rate:.0%} を下回る）。",
        f"「{unit}」 is pure for '{label}' in the training data, but deleting it flipped only {flips['k']} of "
        f"{flips['n']} predictions: the model does not rely on it (flip rate below {min_flip_rate:.0%}).",
        f"モデルは「{unit}」に頼っている可能性がある（削除で {flips['n']} 件中 {flips['k']} 件が変化。"
        f"この件数では {min_flip_rate:.0%} の基準を上回るとも下回るとも言えない）。",
        f"The model may rely on 「{unit}」: deleting it flipped {flips['k']} of {flips['n']} predictions, too few "
        f"texts to tell the rate from the {min_flip_rate:.0%} rule.",
    )
    return deletion_finding(results, row, claim, min_flip_rate)


def why_finding(results: RunResults, row: dict[str, Any]) -> Finding:
    unit, label = row["unit"], row["label"]
    return possibility(
        f"「{unit}」が「{label}」の手がかりになったのは、学習データの作り方（出典の表記やタグ付けの慣習）による"
        "可能性がある。",
        f"The model may have learned 「{unit}」 as a cue for '{label}' from how the training data was made (a "
        "source's wording or tagging convention).",
        [_purity(row)],
        scope=f"training data of {results.metrics.get('task', 'this task')}",
        source=SOURCE,
        decide_by=f"{COUNTERMEASURES.format(run_dir=results.directory)} (the countermeasure command: retrain with "
        f"「{unit}」 masked or balanced and compare)",
        tags=("explanation", "shortcut"),
    )


def shortcut_findings(results: RunResults, result: dict[str, Any]) -> list[Finding]:
    thresholds = result.get("thresholds", {})
    min_purity, min_flip = thresholds.get("min_purity", 0.8), thresholds.get("min_flip_rate", 0.5)
    found = []
    for row in result.get("flagged", []):
        found += [deletion_finding(results, row, relies_claim(row), 0.0), why_finding(results, row)]
    for row in result.get("candidates", []):
        unconfirmed = not row.get("flagged") and not row.get("folded_into") and row["train_purity"] >= min_purity
        if unconfirmed and row["deletion_flip_rate"]["n"]:
            found.append(unconfirmed_finding(results, row, min_flip))
    return found
