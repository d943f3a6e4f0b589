"""Findings (考察) of a PEFT comparison, from its saved result: each method against itself before training and
against the best method, on the same test texts. The paired tests are the comparison's own (McNemar on the
first seed, Benjamini–Hochberg within each family of comparisons; a paired bootstrap interval over texts), so
a difference is a fact when its adjusted p is below the level, else a possibility decided by more seeds."""

from __future__ import annotations

from typing import Any

from mikiwame.framework.findings import Claim, Evidence, Finding, conclude

SOURCE = "compare-peft"


def _evidence(metric: str, c: dict[str, Any]) -> list[Evidence]:
    return [
        Evidence(metric, c["difference"], c["n"], (c["low"], c["high"]), "paired bootstrap over test texts, 95%"),
        Evidence(
            f"{metric}: texts only one side got right ({c['only_a']} vs {c['only_b']})",
            c["difference"],
            c["n"],
            None,
            "McNemar exact, BH-adjusted",
            c["mcnemar_p_adjusted"],
        ),
    ]


def method_findings(result: dict[str, Any], row: dict[str, Any], more_seeds: str) -> list[Finding]:
    method, before, best = row["method"], row["vs_before"], row["vs_best"]
    rose = before["difference"] > 0

    def judged(claim: Claim, evidence: list[Evidence]) -> Finding:
        scope = f"test split of {result['task']}, {result['model']}"
        return conclude(claim, evidence, [None, 0.0], scope=scope, source=SOURCE, decide_by=more_seeds, tags=("peft",))

    found = [
        judged(
            Claim(
                f"{method} による学習で test の正解率は {before['difference']:+.3f} "
                f"{'上がった' if rose else '下がった'}（同じ {before['n']} 文で対応のある比較）。",
                f"Training with {method} {'raised' if rose else 'lowered'} test accuracy by "
                f"{before['difference']:+.3f} (paired, on the same {before['n']} texts).",
                f"{method} による学習で正解率が変わった可能性がある（{before['difference']:+.3f}、有意ではない）。",
                f"Training with {method} may have changed test accuracy ({before['difference']:+.3f}; not "
                "significant).",
            ),
            _evidence(f"{method} − before training", before),
        )
    ]
    if method != best["reference"]:
        reference = best["reference"]
        found.append(
            judged(
                Claim(
                    f"{method} の正解率は最良の {reference} より {abs(best['difference']):.3f} 低い"
                    f"（同じ {best['n']} 文で対応のある比較）。",
                    f"{method} was {abs(best['difference']):.3f} less accurate than the best method, {reference} "
                    f"(paired, on the same {best['n']} texts).",
                    f"{method} は最良の {reference} と同程度の正解率である可能性がある（差 {best['difference']:+.3f}、"
                    "有意ではない）。",
                    f"{method} may be as accurate as the best method, {reference} (difference "
                    f"{best['difference']:+.3f}; not significant).",
                ),
                _evidence(f"{method} − {reference}", best),
            )
        )
    return found


def comparison_findings(result: dict[str, Any]) -> list[Finding]:
    seeds = len(result.get("seeds", [])) or 1
    methods = ",".join(r["method"] for r in result["methods"])
    more_seeds = (
        f"python recipes/compare_peft.py --task {result['task']} --model {result['model']} --methods {methods} "
        f"--seeds {2 * seeds + 1} (more seeds)"
    )
    found = [f for row in result["methods"] for f in method_findings(result, row, more_seeds)]
    return sorted(found, key=lambda f: f.kind != "fact")
