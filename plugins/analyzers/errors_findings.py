"""Findings of `errors`, from its saved JSON: the slices whose accuracy differs from the rest of their split
(a binomial test against the split's accuracy, Benjamini–Hochberg over the split's slices) are facts, large
differences that are not significant are possibilities; why the most confident errors happen (a wrong label, an
ambiguous title) is a possibility, decided by reading them."""

from __future__ import annotations

from typing import Any

from mikiwame.framework.findings import Claim, Evidence, Finding, adjust_p_values, conclude, possibility
from mikiwame.framework.results import RunResults

SOURCE = "errors"
NOTABLE = 0.1  # an accuracy difference worth stating as a possibility when it is not significant
SHOWN_POSSIBLE = 3
CONFIDENT = 0.9  # a wrong prediction this confident is worth reading for a wrong label


def slice_findings(results: RunResults, split: str, overall: float, slices: list[dict[str, Any]]) -> list[Finding]:
    from scipy import stats

    tested = [(s, round(s["accuracy"]["value"] * s["accuracy"]["n"])) for s in slices if s["accuracy"]["n"]]
    p_values = [stats.binomtest(hits, s["accuracy"]["n"], overall).pvalue for s, hits in tested]
    found, possible = [], []
    for (s, hits), q in zip(tested, adjust_p_values(p_values), strict=True):
        a = s["accuracy"]
        name, lower = f"{s['feature']}: {s['value']}", a["value"] < overall
        claim = Claim(
            f"{split} のうち「{name}」の文は正解率が {a['value']:.3f}（{hits}/{a['n']}）で、{split} 全体の "
            f"{overall:.3f} より{'低い' if lower else '高い'}。",
            f"On {split}, texts with '{name}' had accuracy {a['value']:.3f} ({hits}/{a['n']}), "
            f"{'lower' if lower else 'higher'} than the split's {overall:.3f}.",
            f"{split} の「{name}」の文は正解率が{'低い' if lower else '高い'}可能性がある（{a['value']:.3f}、"
            f"全体は {overall:.3f}。この n では有意でない）。",
            f"Texts with '{name}' may be {'harder' if lower else 'easier'} ({a['value']:.3f} against {overall:.3f} on "
            f"{split}; not significant at this n).",
        )
        evidence = [
            Evidence(f"accuracy on {name}", a["value"], a["n"], (a["low"], a["high"]), "Wilson 95%"),
            Evidence(
                f"accuracy on {name} − {split} accuracy",
                a["value"] - overall,
                a["n"],
                None,
                f"binomial test against the split's accuracy, BH-adjusted over {len(tested)} slices",
                q,
            ),
        ]
        finding = conclude(
            claim,
            evidence,
            [None, 0.0],
            scope=f"{split} split, texts with {name}",
            source=SOURCE,
            decide_by="evaluate on a larger test split (more texts in the slice), or re-run with another --seed",
            tags=("slice",),
        )
        if finding.kind == "fact":
            found.append(finding)
        elif abs(a["value"] - overall) >= NOTABLE:
            possible.append(finding)
    return found + possible[:SHOWN_POSSIBLE]


def confident_error_findings(results: RunResults, split: str, errors: list[dict[str, Any]]) -> list[Finding]:
    confident = [e for e in errors if e["confidence"] >= CONFIDENT]
    if not confident:
        return []
    examples = "、".join(f"「{e['text']}」" for e in confident[:3])
    return [
        possibility(
            f"{split} で確信度 {CONFIDENT} 以上で誤った {len(confident)} 件（{examples} など）は、正解ラベルの誤りか、"
            "どちらのクラスとも読める見出しである可能性がある。",
            f"The {len(confident)} {split} texts misclassified with confidence ≥ {CONFIDENT} (e.g. {examples}) may "
            "carry a wrong gold label or be ambiguous between the two classes.",
            [Evidence("most confident error", confident[0]["confidence"], 1)],
            scope=f"{split} split, confidently wrong texts",
            source=SOURCE,
            decide_by="read each text in the report's 'Most confident errors' and relabel it by hand; re-run with "
            "the corrected labels (--data) and compare",
            tags=("explanation",),
        )
    ]


def training_error_findings(results: RunResults, wrong: list[dict[str, Any]], n_train: int) -> list[Finding]:
    if not wrong:
        return []
    return [
        possibility(
            f"最終モデルが学習データで誤る {len(wrong)}/{n_train} 件は、ラベルの誤り（ラベルノイズ）か本当に難しい例で"
            "ある可能性がある。",
            f"The {len(wrong)} of {n_train} training texts the final model still gets wrong may be label noise or "
            "genuinely hard cases.",
            [Evidence("training texts misclassified", len(wrong) / n_train, n_train)],
            scope="training split",
            source=SOURCE,
            decide_by="read them in the report's 'Hard training examples' (re-run with --track-train to see which "
            "were learned late) and relabel the wrong ones",
            tags=("explanation",),
        )
    ]


def errors_findings(results: RunResults, result: dict[str, Any]) -> list[Finding]:
    found = []
    for split, slices in result.get("slices", {}).items():
        if split != "test" and "test" in result["slices"]:
            continue
        overall = result["errors"][split]["accuracy"]["value"]
        found += slice_findings(results, split, overall, slices)
        found += confident_error_findings(results, split, result.get("most_confident_errors", {}).get(split, []))
    train = result.get("errors", {}).get("train")
    if train:
        found += training_error_findings(results, result.get("train_wrong", []), train["n"])
    return found
