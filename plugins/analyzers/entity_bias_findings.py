"""Findings of `entity-bias`, from its saved JSON. Swapping is an intervention, so what it measured about the
model is a fact when the evidence excludes "no effect", and "no effect" is what swapping a non-entity word of
the same texts does (the analyzer's baseline): entity swaps against the baseline (Fisher's exact test on the
flip counts; mean |Δp| by its bootstrap intervals), each entity's flip count against the baseline's
(Fisher, Benjamini–Hochberg over the entities). An entity whose swaps flipped some predictions without
reaching significance is a possibility, decided by more swaps (`--entity-bias-k`)."""

from __future__ import annotations

from typing import Any

from mikiwame.framework.findings import Claim, Evidence, Finding, adjust_p_values, conclude
from mikiwame.framework.results import RunResults

SOURCE = "entity-bias"
LARGER_K = 20
NEGLIGIBLE = 0.01  # a difference of mean |Δp| below this is not worth a finding, significant or not


def _rate(metric: str, r: dict[str, Any]) -> Evidence:
    return Evidence(metric, r["rate"], r["n"], (r["low"], r["high"]), "Wilson 95%")


def decide_by(results: RunResults) -> str:
    return f"mikiwame analyze {results.directory} entity-bias --entity-bias-k {LARGER_K} (more swaps per entity)"


def overall_findings(results: RunResults, result: dict[str, Any]) -> list[Finding]:
    from scipy import stats

    swaps, baseline = result.get("swaps"), result.get("non_entity_baseline")
    if not swaps or not baseline:
        return []
    s, b = swaps["flip_rate"], baseline["flip_rate"]
    p = stats.fisher_exact([[s["k"], s["n"] - s["k"]], [b["k"], b["n"] - b["k"]]], alternative="greater").pvalue
    flips = conclude(
        Claim(
            f"固有表現を入れ替えると {s['n']} 件中 {s['k']} 件で予測が変わり、固有表現でない語の入れ替え"
            f"（{b['n']} 件中 {b['k']} 件）より多い。モデルの予測は固有表現に左右される。",
            f"Swapping entities flipped {s['k']} of {s['n']} predictions, more than swapping other words "
            f"({b['k']} of {b['n']}): the model's predictions depend on the entities.",
            f"モデルの予測は固有表現に左右される可能性がある（入れ替えで {s['n']} 件中 {s['k']} 件、他の語では "
            f"{b['n']} 件中 {b['k']} 件。差は有意でない）。",
            f"The model's predictions may depend on the entities (swaps flipped {s['k']} of {s['n']}, other words "
            f"{b['k']} of {b['n']}; not a significant difference).",
        ),
        [
            _rate("flip rate, entity swaps", s),
            _rate("flip rate, non-entity word swaps", b),
            Evidence(
                "entity − non-entity flip rate",
                s["rate"] - b["rate"],
                s["n"],
                None,
                "Fisher's exact test, one-sided",
                float(p),
            ),
        ],
        [None, None, 0.0],
        scope="held-out texts with an entity, this run's model",
        source=SOURCE,
        decide_by=decide_by(results),
        tags=("intervention", "entity"),
    )
    ds, db = swaps["mean_abs_delta"], baseline["mean_abs_delta"]
    delta = conclude(
        Claim(
            f"固有表現の入れ替えは予測確率を平均 {ds['mean']:.3f} 動かし、他の語の入れ替え（{db['mean']:.3f}）より"
            "大きい（二つの 95% 区間は重ならない）。",
            f"Swapping entities moved the predicted probability by {ds['mean']:.3f} on average, more than swapping "
            f"other words ({db['mean']:.3f}; the two 95% intervals do not overlap).",
            f"固有表現の入れ替えは他の語より予測確率を動かす可能性がある（平均 {ds['mean']:.3f} と "
            f"{db['mean']:.3f}、区間が重なる）。",
            f"Swapping entities may move the predicted probability more than other words ({ds['mean']:.3f} against "
            f"{db['mean']:.3f}; the intervals overlap).",
        ),
        [
            Evidence("mean |Δp|, entity swaps", ds["mean"], ds["n"], (ds["low"], ds["high"]), "bootstrap 95%"),
            Evidence("mean |Δp|, non-entity swaps", db["mean"], db["n"], (db["low"], db["high"]), "bootstrap 95%"),
            Evidence(
                "difference of mean |Δp|",
                ds["mean"] - db["mean"],
                ds["n"],
                (ds["low"] - db["high"], ds["high"] - db["low"]),
                "non-overlap of the two intervals",
            ),
        ],
        [None, None, 0.0],
        scope="held-out texts with an entity, this run's model",
        source=SOURCE,
        decide_by=decide_by(results),
        tags=("intervention", "entity"),
    )
    return [flips] if abs(ds["mean"] - db["mean"]) < NEGLIGIBLE else [flips, delta]


def entity_findings(results: RunResults, result: dict[str, Any]) -> list[Finding]:
    """Each entity's flips against the baseline rate; the significant ones are facts, the strongest of the rest
    (if it flipped anything) a possibility."""
    from scipy import stats

    base = (result.get("non_entity_baseline") or {}).get("flip_rate") or {"k": 0, "n": 0, "rate": 0.0}
    baseline = base["rate"] or 0.0
    rows = [r for r in result.get("entities", []) if r["flip_rate"]["n"]]
    p_values = [
        float(
            stats.fisher_exact(
                [[r["flip_rate"]["k"], r["flip_rate"]["n"] - r["flip_rate"]["k"]], [base["k"], base["n"] - base["k"]]],
                alternative="greater",
            ).pvalue
        )
        for r in rows
    ]
    found, possible = [], []
    for r, q in zip(rows, adjust_p_values(p_values), strict=True):
        f, entity, pushes = r["flip_rate"], r["entity"], r["pushes"]
        finding = conclude(
            Claim(
                f"「{entity}」（{r['group']}）を入れ替えると {f['n']} 件中 {f['k']} 件で予測が変わった"
                f"（他の語の入れ替えでは {baseline:.3f}）。モデルの予測はこの固有表現に左右される。",
                f"Swapping 「{entity}」 ({r['group']}) flipped {f['k']} of {f['n']} predictions (other words: "
                f"{baseline:.3f}): the model's predictions depend on 「{entity}」.",
                f"「{entity}」は予測を「{pushes}」へ押している可能性がある"
                f"（入れ替えで {f['n']} 件中 {f['k']} 件が変化、有意ではない）。",
                f"「{entity}」 may push predictions towards '{pushes}' (swaps flipped {f['k']} of {f['n']}; not "
                "significant).",
            ),
            [
                _rate(f"flip rate when 「{entity}」 is swapped", f),
                Evidence(
                    f"flips of 「{entity}」 against the baseline rate",
                    f["rate"] - baseline,
                    f["n"],
                    None,
                    "Fisher's exact test against the baseline swaps, one-sided, BH-adjusted over the entities",
                    q,
                ),
            ],
            [None, 0.0],
            scope=f"held-out texts containing 「{entity}」",
            source=SOURCE,
            decide_by=decide_by(results),
            tags=("intervention", "entity"),
        )
        if finding.kind == "fact":
            found.append(finding)
        elif f["k"]:
            possible.append(finding)
    return found + possible[:1]


def entity_bias_findings(results: RunResults, result: dict[str, Any]) -> list[Finding]:
    return overall_findings(results, result) + entity_findings(results, result)
