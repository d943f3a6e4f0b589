"""Findings every run has, from metrics.json: accuracy against always answering the majority class, before
against after fine-tuning, the classes recognised better or worse than the rest, and where each class's errors
go. Built on the same findings hook an outside plugin uses; the figures are the saved ones (Wilson intervals,
sklearn's confusion matrix), the tests binomial, Benjamini–Hochberg-adjusted where every class is tested."""

from __future__ import annotations

from typing import Any

import numpy as np

from mikiwame.framework import hookimpl
from mikiwame.framework.discussion import rerun_command
from mikiwame.framework.findings import Claim, Evidence, Finding, adjust_p_values, conclude, possibility
from mikiwame.framework.metrics import mcnemar_exact, wilson_interval
from mikiwame.framework.results import RunResults

SOURCE = "run"


def _interval(estimate: dict[str, Any]) -> tuple[float, float]:
    return (estimate["low"], estimate["high"])


def accuracy_findings(results: RunResults, split: str, after: dict[str, Any]) -> list[Finding]:
    """Accuracy against the majority-class rate of the same split: a classifier that learned nothing still
    scores that much."""
    matrix, acc = after["confusion_matrix"], after["accuracy"]
    n = after["n"]
    majority = max(sum(row) for row in matrix) / n
    claim = Claim(
        f"{split} の正解率は {acc['value']:.3f}（n={n}）で、最も多いクラスだけを答えた場合の {majority:.3f} を"
        f"{'上回った' if acc['value'] > majority else '下回った'}。",
        f"{split} accuracy was {acc['value']:.3f} (n={n}), {'above' if acc['value'] > majority else 'below'} the "
        f"{majority:.3f} of always answering the most frequent class.",
        f"{split} の正解率 {acc['value']:.3f} は、最も多いクラスだけを答えた場合の {majority:.3f} と"
        f"差がない可能性がある（n={n} では区間が {majority:.3f} を含む）。",
        f"{split} accuracy ({acc['value']:.3f}) may be no better than always answering the most frequent class "
        f"({majority:.3f}): at n={n} its interval includes that rate.",
    )
    evidence = [Evidence("accuracy", acc["value"], n, _interval(acc), "Wilson 95%")]
    return [
        conclude(
            claim,
            evidence,
            majority,
            scope=f"{split} split, this run's model",
            source=SOURCE,
            decide_by=rerun_command(results, "--epochs 10")
            + " (more training), or a larger test split (--data with more texts)",
        )
    ]


def paired_change(results: RunResults, split: str, delta: float) -> Evidence | None:
    """McNemar's exact test on the per-text predictions before and after (predictions.jsonl), when the run
    saved them; None for a run recorded before they were."""
    rows = [r for r in results.predictions() if r["split"] == split and "predicted_before" in r]
    if not rows:
        return None
    only_after, only_before, p = mcnemar_exact(
        np.asarray([r["predicted"] == r["gold"] for r in rows]),
        np.asarray([r["predicted_before"] == r["gold"] for r in rows]),
    )
    test = f"McNemar exact ({only_after} texts right only after, {only_before} only before)"
    return Evidence("accuracy change", delta, len(rows), None, test, p)


def change_findings(results: RunResults, split: str, before: dict[str, Any], after: dict[str, Any]) -> list[Finding]:
    """Before against after fine-tuning on the same texts. Only each accuracy's interval is saved, not the
    per-text predictions (predictions.jsonl's predicted_before), McNemar's paired test decides; a run saved
    without them falls back to the two Wilson intervals not overlapping (unpaired, conservative)."""
    b, a = before["accuracy"], after["accuracy"]
    delta = a["value"] - b["value"]
    change = (a["low"] - b["high"], a["high"] - b["low"])
    rose = "上がった" if delta > 0 else "下がった"
    claim = Claim(
        f"ファインチューニングで {split} の正解率は {b['value']:.3f} から {a['value']:.3f} に{rose}"
        f"（{delta:+.3f}、n={after['n']}）。",
        f"Fine-tuning {'raised' if delta > 0 else 'lowered'} {split} accuracy from {b['value']:.3f} to "
        f"{a['value']:.3f} ({delta:+.3f}, n={after['n']}).",
        f"ファインチューニングで {split} の正解率は {b['value']:.3f} から {a['value']:.3f} に変わったが、"
        "この差は偶然の可能性がある。",
        f"Fine-tuning may have changed {split} accuracy ({b['value']:.3f} → {a['value']:.3f}), but the "
        "difference may be chance.",
    )
    evidence = [
        Evidence("accuracy before", b["value"], before["n"], _interval(b), "Wilson 95%"),
        Evidence("accuracy after", a["value"], after["n"], _interval(a), "Wilson 95%"),
        paired_change(results, split, delta)
        or Evidence("accuracy change", delta, after["n"], change, "non-overlap of the two Wilson intervals"),
    ]
    return [
        conclude(
            claim,
            evidence,
            [None, None, 0.0],
            scope=f"{split} split, this run's model",
            source=SOURCE,
            decide_by=rerun_command(results, "--seed 1") + " (and --seed 2, ...): the change across seeds",
        )
    ]


def class_findings(results: RunResults, split: str, after: dict[str, Any]) -> list[Finding]:
    """Per class, its recall against the accuracy on the other classes' texts (binomial test, BH over the
    classes): the classes significantly harder or easier are facts; the hardest one, if not significant, is a
    possibility."""
    from scipy import stats

    labels, matrix = after["labels"], after["confusion_matrix"]
    total_hits, total = sum(matrix[i][i] for i in range(len(labels))), after["n"]
    tested = []
    for i, label in enumerate(labels):
        n, hits = sum(matrix[i]), matrix[i][i]
        if n == 0 or n == total:
            continue
        rest = (total_hits - hits) / (total - n)
        tested.append((label, hits, n, rest, stats.binomtest(hits, n, rest).pvalue))
    q_values = adjust_p_values([t[4] for t in tested])
    found = []
    for (label, hits, n, rest, _), q in zip(tested, q_values, strict=True):
        recall = hits / n
        lower = recall < rest
        evidence = [
            Evidence(f"recall of {label}", recall, n, wilson_interval(hits, n), "Wilson 95%"),
            Evidence(
                f"recall of {label} − accuracy on the other classes",
                recall - rest,
                n,
                None,
                "binomial test against the other classes' accuracy, BH-adjusted",
                q,
            ),
        ]
        claim = Claim(
            f"「{label}」の再現率は {hits}/{n} = {recall:.3f} で、他のクラスの正解率 {rest:.3f} より"
            f"{'低い' if lower else '高い'}。",
            f"Recall of '{label}' was {hits}/{n} = {recall:.3f}, {'lower' if lower else 'higher'} than the "
            f"{rest:.3f} accuracy on the other classes.",
            f"「{label}」は他のクラスより{'見分けにくい' if lower else '見分けやすい'}可能性がある"
            f"（再現率 {recall:.3f}、他は {rest:.3f}。この n では有意でない）。",
            f"'{label}' may be {'harder' if lower else 'easier'} to recognise than the other classes (recall "
            f"{recall:.3f} against {rest:.3f}; not significant at this n).",
        )
        finding = conclude(
            claim,
            evidence,
            [None, 0.0],
            scope=f"{split} split, texts labelled {label}",
            source=SOURCE,
            decide_by=rerun_command(results, "--seed 1") + f" and compare the recall of '{label}'",
            tags=("per-class",),
        )
        if finding.kind == "fact" or lower and recall == min(t[1] / t[2] for t in tested):
            found.append(finding)
    return found


def confusion_findings(results: RunResults, split: str, after: dict[str, Any]) -> list[Finding]:
    """Where each class's errors go: the top pair of each class tested against errors spread evenly over the
    other classes (binomial, BH over the classes), and, for the most frequent pair, why it may happen."""
    from scipy import stats

    labels, matrix = after["labels"], after["confusion_matrix"]
    if len(labels) < 3:
        return []
    pairs = []
    for i, gold in enumerate(labels):
        errors = sum(matrix[i]) - matrix[i][i]
        if errors == 0:
            continue
        j = max((j for j in range(len(labels)) if j != i), key=lambda j: matrix[i][j])
        p = stats.binomtest(matrix[i][j], errors, 1 / (len(labels) - 1), alternative="greater").pvalue
        pairs.append((gold, labels[j], matrix[i][j], errors, p))
    found = []
    for (gold, predicted, count, errors, _), q in zip(pairs, adjust_p_values([p[4] for p in pairs]), strict=True):
        claim = Claim(
            f"「{gold}」の誤り {errors} 件のうち {count} 件は「{predicted}」と予測された（誤りが他のクラスに"
            "均等に散るよりも偏っている）。",
            f"Of the {errors} errors on '{gold}', {count} were predicted as '{predicted}' (more concentrated than "
            "errors spread evenly over the other classes).",
            f"「{gold}」の誤りは「{predicted}」に偏っている可能性がある（{errors} 件中 {count} 件、有意ではない）。",
            f"The errors on '{gold}' may lean towards '{predicted}' ({count} of {errors}; not significant).",
        )
        evidence = [
            Evidence(
                f"share of the errors on {gold} predicted as {predicted}",
                count / errors,
                errors,
                wilson_interval(count, errors),
                "binomial test against an even spread, BH-adjusted",
                q,
            )
        ]
        found.append(
            conclude(
                claim,
                evidence,
                1 / (len(labels) - 1),
                scope=f"{split} split, errors on texts labelled {gold}",
                source=SOURCE,
                decide_by=f"mikiwame analyze {results.directory} errors (read the texts of this pair)",
                tags=("confusion",),
            )
        )
    if pairs:
        gold, predicted, count, errors, _ = max(pairs, key=lambda p: p[2])
        found.append(
            possibility(
                f"「{gold}」と「{predicted}」は語彙や話題が重なるため取り違えられている可能性がある"
                f"（最も多い混同ペア、{count} 件）。",
                f"'{gold}' and '{predicted}' may be confused because their vocabulary or topics overlap (the most "
                f"frequent confusion, {count} texts).",
                [Evidence(f"errors {gold} → {predicted}", count, errors, wilson_interval(count, errors), "Wilson 95%")],
                scope=f"{split} split, {gold} → {predicted}",
                source=SOURCE,
                decide_by=f"mikiwame analyze {results.directory} token-stats,shortcuts (shared words and what the "
                "model relies on)",
                tags=("explanation",),
            )
        )
    return found


@hookimpl
def mikiwame_findings(results: RunResults) -> list[Finding]:
    m = results.metrics
    split = "test" if "test" in m.get("after", {}) else next(iter(m.get("after", {})), None)
    if split is None:
        return []
    after = m["after"][split]
    found = accuracy_findings(results, split, after)
    if split in m.get("before", {}):
        found += change_findings(results, split, m["before"][split], after)
    return found + class_findings(results, split, after) + confusion_findings(results, split, after)
