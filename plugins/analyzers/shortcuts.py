"""`shortcuts`: units the saved model leans on that carry the label in the training data, proven by deletion.

Measured on the evaluation texts (validation and test; the training texts when a run has none); docs/shortcuts.md
states the rule:
1. units (plugins/analyzers/shortcut_units.py): MeCab words, merged noun spans, tags grown from the training data,
   bracketed segments and word n-grams;
2. attribution proposes: integrated gradients (or gradient × input) of the predicted class logit, summed from
   word pieces into units (ig: `--shortcuts-steps` Gauss–Legendre steps, twice as many for a text whose relative
   convergence delta is above MAX_RELATIVE_DELTA with them); a unit's *share* in a text is its attribution over
   the sum of the absolute attributions of all pieces of that text. Mean share per (unit, predicted label), with
   a 95% bootstrap interval and support (texts); the pure pairs with the highest mean |share| are proposed;
3. occlusion confirms (plugins/analyzers/occlusion.py, the oracle's own test): deleting the unit from every text of its
   support flips that many predictions (Wilson interval); with the unit's own training purity and support, the
   oracle's rule decides, and overlapping flagged units are folded into the one that carries the effect.
`--shortcuts-method occlusion` skips attribution and deletes every unit with enough support (the oracle).
Per text, comprehensiveness (ferret's AOPC) deletes the top-1..k words and averages the probability drop,
against a control that deletes as many random words.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np

from mikiwame.framework import hookimpl
from mikiwame.framework.analysis import AnalysisContext, Analyzer
from mikiwame.framework.attribution import MAX_RELATIVE_DELTA, BatchAttributor, TextAttribution
from mikiwame.framework.attribution import METHODS as ATTRIBUTION_METHODS
from mikiwame.framework.findings import Finding
from mikiwame.framework.japanese import Span, located_words, unit_spans
from mikiwame.framework.metrics import MEAN, RATE, mean_interval
from mikiwame.framework.options import option, read_options
from mikiwame.framework.results import ReportSection, RunResults
from mikiwame.framework.runfiles import AnyOf, Between, Count, Fraction, Nullable, Obj
from mikiwame.plugins.analyzers.occlusion import (
    MIN_FLIP_RATE,
    MIN_PURITY,
    MIN_SUPPORT,
    HeldOut,
    Pair,
    TrainingUnits,
    delete_spans,
    fold,
    occlusion_oracle,
    relied_on,
)
from mikiwame.plugins.analyzers.shortcut_units import TextUnits
from mikiwame.plugins.analyzers.shortcuts_findings import shortcut_findings
from mikiwame.plugins.analyzers.shortcuts_report import shortcuts_html, shortcuts_renderable

NAME = "shortcuts"
METHODS = (*ATTRIBUTION_METHODS, "occlusion")
# What attribution proposes to occlusion; the flagging rule itself (MIN_SUPPORT, MIN_PURITY, MIN_FLIP_RATE) is
# the oracle's, in plugins/analyzers/occlusion.py. docs/shortcuts.md states these values; the tests use these
# constants.
# Pure units are proposed by how much attribution says they matter, in either direction (mean |share|), not by
# a floor on the signed share: integrated gradients from a [MASK] baseline and deletion are different
# counterfactuals, and on real runs a unit whose deletion flipped 70% of its texts had a negative mean share
# (-0.12), others a positive one below 0.05 (docs/shortcuts.md). Deletion is cheap (one forward per occurrence);
# the cap bounds it on corpora with many pure units.
PROPOSALS = 60  # pure (unit, label) pairs, highest mean |share| first, confirmed by occlusion at most
CANDIDATES = 15  # (unit, label) pairs, highest mean share first, shown and tested whatever their purity
MIN_GOLD_SUPPORT = 3  # misclassified texts of one gold label containing the unit
AOPC_K = 3  # comprehensiveness deletes the top 1..AOPC_K words of each text
EXAMPLES = 3
ATTRIBUTED_EXAMPLES = 12  # evaluation texts (errors first) saved with every word's share, for highlighting
DEFAULT_STEPS = 16  # a text that does not converge with them is integrated again with twice as many
DEFAULT_MAX_TEXTS = 2000

WORD = Annotated[list[float], Between(3, 3)]  # [start, end, share]
SPAN = Annotated[list[Count], Between(2, 2)]  # [start, end]
CANDIDATE = Obj(
    {
        "unit": str,
        "label": str,
        "support": Count,
        "train_count": Count,
        "train_purity": Fraction,
        "deletion_flip_rate": RATE,
        "deletion_probability_drop": MEAN,
        "flagged": bool,
    },
    {
        "kind": str,
        "attribution_share": Nullable(MEAN),
        "evidence": Nullable(
            Obj({"place": str, "position_regularity": Fraction, "bracketed": Fraction, "label_train_share": Fraction})
        ),
        "folded": list[str],
        "folded_into": str | None,
        "examples": list[Obj({"text": str, "spans": list[SPAN]}, {"words": list[WORD]})],  # type: ignore[misc]
    },
)
VERDICT = AnyOf(
    Obj({"status": Literal["not tested"], "label": str | None, "train_purity": Fraction}),
    Obj({"status": Literal["flagged", "not relied on"], "unit": str, "label": str, "flips": RATE}),
)
RESULT = Obj(
    {
        "method": str,
        "n_texts": Count,
        "thresholds": Obj(
            {"min_support": Count, "max_relative_delta": Fraction},
            {"min_purity": Fraction, "min_flip_rate": Fraction},
        ),
        "candidates": list[CANDIDATE],  # type: ignore[valid-type]  # a schema, not a type
        "flagged": list[CANDIDATE],  # type: ignore[valid-type]
        "comprehensiveness": Nullable(Obj({"top": MEAN, "random": MEAN, "k": Count})),
        "convergence": Nullable(
            Obj(
                {"median_relative_delta": float, "max_relative_delta": float, "share_over_threshold": Fraction},
                {"share_integrated_again": Nullable(Fraction)},
            )
        ),
    },
    {
        "n_steps": Nullable(Count),
        "fallback_steps": Nullable(Count),
        "against_gold": Nullable(
            Obj(
                {
                    "units": list[  # type: ignore[misc]
                        Obj({"unit": str, "gold": str, "attribution_share": MEAN}, {"verdict": Nullable(VERDICT)})
                    ]
                }
            )
        ),
        "attributed_examples": list[  # type: ignore[misc]
            Obj({"text": str, "words": list[WORD], "predicted": str, "probability": Fraction, "gold": str | None})
        ],
        "warnings": list[str],
    },
)


def _piece_starts(attribution: TextAttribution) -> tuple[float, list[tuple[int, float]]]:
    """The sum of the absolute attributions of the text's placed pieces (the denominator of every share; 1 when
    there are none), and each placed piece's start offset with its attribution."""
    placed = [(span[0], float(s)) for s, span in zip(attribution.scores, attribution.spans, strict=True) if span]
    return sum(abs(s) for _, s in placed) or 1.0, placed


def unit_scores(text: str, attribution: TextAttribution, units: list[Span] | None = None) -> list[tuple[Span, float]]:
    """Each unit of the text (default: its content words and noun spans) with its share: the attributions of the
    pieces starting inside it, over the sum of absolute piece attributions of the text."""
    total, starts = _piece_starts(attribution)
    units = unit_spans(text) if units is None else units
    return [(u, sum(s for at, s in starts if u.start <= at < u.end) / total) for u in units]


def word_shares(text: str, attribution: TextAttribution) -> list[list[float]]:
    """[start, end, share] for every MeCab word of the text, particles included: what a report highlights."""
    spans = [Span(w.surface, w.start, w.end, "word") for w in located_words(text)]
    return [[u.start, u.end, round(share, 4)] for u, share in unit_scores(text, attribution, spans)]


def key_shares(attribution: TextAttribution, units: TextUnits) -> dict[str, float]:
    """Each candidate unit of a text with its share of the text's attribution (all its occurrences together,
    as deleting it deletes them all)."""
    total, starts = _piece_starts(attribution)
    return {
        key: sum(s for at, s in starts if any(u.start <= at < u.end for u in spans)) / total
        for key, spans in units.items()
    }


def propose(
    shares: dict[Pair, list[float]], training: TrainingUnits, min_support: int
) -> tuple[list[Pair], list[Pair]]:
    """What attribution asks occlusion to confirm: the CANDIDATES pairs with the highest mean share (shown in the
    report whatever their purity), in order of mean share; and the PROPOSALS pure pairs (purity ≥ MIN_PURITY)
    with the highest mean |share|, the units attribution finds most influential either way, and every pure
    grown tag beyond them."""
    supported = sorted(
        (pair for pair, values in shares.items() if len(values) >= min_support),
        key=lambda pair: (-float(np.mean(shares[pair])), pair),
    )
    pure = sorted(
        (pair for pair in supported if training.purity(pair)[0] >= MIN_PURITY),
        key=lambda pair: (-float(np.mean(np.abs(shares[pair]))), pair),
    )
    # the tags the training data grew are few and are the artefacts a corpus carries: each pure one is confirmed
    # whatever the cap (on livedoor seed 3 the tag 'resented by', flip 0.70, fell below it among 60 other units)
    tags = [pair for pair in pure if pair[0] in training.tags]
    return supported[:CANDIDATES], list(dict.fromkeys([*pure[:PROPOSALS], *tags]))


def _examples(held_out: HeldOut, pair: Pair, attributions: list[TextAttribution] | None) -> list[dict[str, Any]]:
    return [
        {
            "text": held_out.texts[i],
            "spans": [[u.start, u.end] for u in held_out.units[i][pair[0]]],
            "words": word_shares(held_out.texts[i], attributions[i]) if attributions else [],
        }
        for i in held_out.support[pair][:EXAMPLES]
    ]


def _flag(rows: list[dict[str, Any]], held_out: HeldOut, min_support: int) -> list[dict[str, Any]]:
    """Marks the rows that meet the relied-on rule and stay after folding (`flagged`), and those folded into
    another (`folded_into`); returns the flagged rows, each listing what was folded into it."""
    kept = {(r["unit"], r["label"]): r for r in fold([r for r in rows if relied_on(r, min_support)], held_out)}
    for row in rows:
        stays = kept.get((row["unit"], row["label"]))
        row["flagged"] = stays is not None
        row["folded"] = stays["folded"] if stays else []
        row["folded_into"] = next(
            (k[0] for k, r in kept.items() if row["unit"] in r["folded"] and k[1] == row["label"]), None
        )
    return [r for r in rows if r["flagged"]]


def find_shortcuts(
    predictor: Any,
    texts: list[str],
    train_texts: list[str],
    train_labels: list[str],
    *,
    method: str = "ig",
    n_steps: int = DEFAULT_STEPS,
    seed: int = 0,
    gold: list[str] | None = None,
    min_support: int = MIN_SUPPORT,
) -> dict[str, Any]:
    """The whole analysis on a predictor (`.attributor(...)`, `.labels`, `.probabilities(texts)`); with
    the texts' `gold` labels, the misclassified texts are also attributed to their gold class.

    `ig`/`gxi`: attribution proposes (unit, label) pairs, occlusion confirms them; `occlusion`: the exhaustive
    oracle, every pair with enough support deleted (no attribution, no comprehensiveness)."""
    training = TrainingUnits(train_texts, train_labels)
    held_out = HeldOut.predict(predictor, texts, training)
    common = {
        "method": method,
        "n_texts": len(texts),
        "labels": predictor.labels,
        "thresholds": {
            "min_support": min_support,
            "proposals": PROPOSALS,
            "min_purity": MIN_PURITY,
            "min_flip_rate": MIN_FLIP_RATE,
            "max_relative_delta": MAX_RELATIVE_DELTA,
        },
    }
    if method == "occlusion":
        return common | _oracle_only(predictor, held_out, training, min_support, seed)
    return common | _proposed_and_confirmed(
        predictor,
        held_out,
        training,
        texts,
        method=method,
        n_steps=n_steps,
        seed=seed,
        gold=gold,
        min_support=min_support,
    )


def _oracle_only(
    predictor: Any, held_out: HeldOut, training: TrainingUnits, min_support: int, seed: int
) -> dict[str, Any]:
    """`--shortcuts-method occlusion`: every pair with enough support deleted; no attribution figures."""
    oracle = occlusion_oracle(predictor, held_out, training, min_support=min_support, seed=seed)
    flagged = oracle.pop("relied_on")
    for row in flagged:
        row |= {
            "flagged": True,
            "attribution_share": None,
            "examples": _examples(held_out, (row["unit"], row["label"]), None),
        }
    return oracle | {
        "n_steps": None,
        "fallback_steps": None,
        "convergence": None,
        "comprehensiveness": None,
        "against_gold": None,
        "candidates": flagged,
        "flagged": flagged,
        "attributed_examples": [],
    }


def _proposed_and_confirmed(
    predictor: Any,
    held_out: HeldOut,
    training: TrainingUnits,
    texts: list[str],
    *,
    method: str,
    n_steps: int,
    seed: int,
    gold: list[str] | None,
    min_support: int,
) -> dict[str, Any]:
    """Attribution of the predicted class proposes (unit, label) pairs: the most influential pure ones (mean
    |share|) for occlusion to confirm, the highest mean share for the report."""
    labels, probs, predicted = predictor.labels, held_out.probs, held_out.predicted
    fallback_steps = 2 * n_steps if method == "ig" else None
    attributor = predictor.attributor(method=method, n_steps=n_steps, fallback_steps=fallback_steps)
    attributions = attributor.attribute(texts, [int(p) for p in predicted])
    shares: dict[Pair, list[float]] = defaultdict(list)
    for i, attribution in enumerate(attributions):
        for key, share in key_shares(attribution, held_out.units[i]).items():
            shares[(key, labels[predicted[i]])].append(share)
    shown, proposed = propose(shares, training, min_support)
    against = _against_gold(attributor, held_out, gold, seed) if gold else None
    explained = against_gold_pairs(against, training, held_out, min_support) if against else []
    tested = list(dict.fromkeys([*shown, *proposed, *explained]))
    effects = held_out.occlude(predictor, tested, seed)
    rows = [
        training.describe(pair, held_out, effects[pair])
        | {"attribution_share": mean_interval(shares[pair], seed), "examples": _examples(held_out, pair, attributions)}
        for pair in tested
    ]
    rows.sort(key=lambda r: (-r["attribution_share"]["mean"], r["unit"], r["label"]))
    flagged = _flag(rows, held_out, min_support)
    if against:
        explain_against_gold(against, rows, training)
    per_text = [unit_scores(t, a) for t, a in zip(texts, attributions, strict=True)]
    return {
        "n_steps": n_steps,
        "fallback_steps": fallback_steps,
        "n_units_tested": len(tested),
        "convergence": _convergence(attributions, n_steps) if method == "ig" else None,
        "comprehensiveness": _aopc(predictor, texts, per_text, probs, predicted, seed),
        "against_gold": against,
        "candidates": [r for r in rows if r["flagged"] or (r["unit"], r["label"]) in [*shown, *explained]],
        "flagged": flagged,
        "attributed_examples": _attributed_examples(texts, attributions, probs, labels, gold),
    }


def _attributed_examples(
    texts: list[str], attributions: list[TextAttribution], probs: np.ndarray, labels: list[str], gold: list[str] | None
) -> list[dict[str, Any]]:
    """A few evaluation texts, misclassified ones first, with every word's share of the predicted-class
    attribution."""
    order = sorted(range(len(texts)), key=lambda i: (gold is None or labels[int(probs[i].argmax())] == gold[i], i))
    return [
        {
            "text": texts[i],
            "predicted": labels[int(probs[i].argmax())],
            "probability": round(float(probs[i].max()), 4),
            "gold": gold[i] if gold else None,
            "words": word_shares(texts[i], attributions[i]),
        }
        for i in order[:ATTRIBUTED_EXAMPLES]
    ]


def listable_units(units: list[TextUnits], gold: list[str], wrong: list[int]) -> dict[int, TextUnits]:
    """The misclassified texts `wrong` worth attributing to their gold class, with their candidate units (the
    same units the shortcut table tests, grown tags included): a unit is listed only when at least
    MIN_GOLD_SUPPORT misclassified texts of one gold label contain it, so a text holding no such unit could
    change nothing shown (at base size each attribution is seconds)."""
    support = Counter((key, gold[i]) for i in wrong for key in units[i])
    return {i: units[i] for i in wrong if any(support[(key, gold[i])] >= MIN_GOLD_SUPPORT for key in units[i])}


def _against_gold(attributor: BatchAttributor, held_out: HeldOut, gold: list[str], seed: int) -> dict[str, Any]:
    """In the misclassified texts, the units whose attribution to the *gold* class is most negative: what
    argued against the right answer."""
    labels, predicted = held_out.labels, held_out.predicted
    wrong = [i for i, g in enumerate(gold) if labels.index(g) != predicted[i]]
    units = listable_units(held_out.units, gold, wrong)
    listable = list(units)
    texts = [held_out.texts[i] for i in listable]
    attributions = attributor.attribute(texts, [labels.index(gold[i]) for i in listable])
    shares: dict[tuple[str, str], list[float]] = defaultdict(list)
    for i, attribution in zip(listable, attributions, strict=True):
        for unit, share in key_shares(attribution, units[i]).items():
            shares[(unit, gold[i])].append(share)
    ranked = sorted(
        (pair for pair, v in shares.items() if len(v) >= MIN_GOLD_SUPPORT), key=lambda pair: np.mean(shares[pair])
    )
    return {
        "n_errors": len(wrong),
        "n_attributed": len(listable),
        "units": [
            {"unit": u, "gold": g, "attribution_share": mean_interval(shares[(u, g)], seed)}
            for u, g in ranked[:CANDIDATES]
        ],
    }


def against_gold_pairs(
    against: dict[str, Any], training: TrainingUnits, held_out: HeldOut, min_support: int
) -> list[Pair]:
    """What the shortcut table must test so that it can say why a unit argued against the gold label: each
    listed unit, and each grown tag that contains it, paired with every label it is pure for in training and
    has the support for."""
    pairs = []
    for row in against["units"]:
        for unit in [row["unit"], *(t for t in training.tags if row["unit"] in t and t != row["unit"])]:
            for label in held_out.labels:
                pair = (unit, label)
                pure = training.purity(pair)[0] >= MIN_PURITY
                if label != row["gold"] and pure and len(held_out.support.get(pair, ())) >= min_support:
                    pairs.append(pair)
    return pairs


def explain_against_gold(against: dict[str, Any], rows: list[dict[str, Any]], training: TrainingUnits) -> None:
    """Adds to each unit listed against the gold label what the shortcut table found for it, so a report never
    lists a unit against the gold label in many errors while the table says it is not relied on, without
    saying why: flagged (itself, or the tag it folds into), tested and not relied on (its flip rate), or never
    tested (not pure in training, or too little support)."""
    for entry in against["units"]:
        unit = entry["unit"]
        flagged = [r for r in rows if r["flagged"] and (r["unit"] == unit or unit in r["folded"] or unit in r["unit"])]
        tested = [r for r in rows if r["unit"] == unit and r["label"] != entry["gold"]]
        if flagged:
            best = flagged[0]
            flip = best["deletion_flip_rate"]
            entry["verdict"] = {"status": "flagged", "unit": best["unit"], "label": best["label"], "flips": flip}
        elif tested:
            best = max(tested, key=lambda r: r["deletion_flip_rate"]["rate"] or 0.0)
            entry["verdict"] = {
                "status": "not relied on",
                "unit": best["unit"],
                "label": best["label"],
                "flips": best["deletion_flip_rate"],
            }
        else:
            counts = training.counts.get(unit, Counter())
            label, count = counts.most_common(1)[0] if counts else (None, 0)
            purity = count / sum(counts.values()) if counts else 0.0
            entry["verdict"] = {"status": "not tested", "label": label, "train_purity": purity}


def _convergence(attributions: list[TextAttribution], n_steps: int) -> dict[str, Any] | None:
    """Completeness after the fallback: the relative deltas, and the share of texts that needed more steps."""
    if not attributions:
        return None
    deltas = np.asarray([a.relative_delta for a in attributions])
    return {
        "median_relative_delta": float(np.median(deltas)),
        "max_relative_delta": float(deltas.max()),
        "share_over_threshold": float((deltas > MAX_RELATIVE_DELTA).mean()),
        "share_integrated_again": float(np.mean([a.n_steps > n_steps for a in attributions])),
    }


def _aopc(
    predictor: Any, texts: list[str], per_text: list, probs: np.ndarray, predicted: np.ndarray, seed: int
) -> dict[str, Any]:
    """Comprehensiveness AOPC: mean over k = 1..AOPC_K of the drop in predicted-class probability after deleting
    the top-k words by attribution; the control deletes k random words of the same text."""
    rng = random.Random(seed)
    batch: list[str] = []
    owners: list[tuple[int, str]] = []
    for i, units in enumerate(per_text):
        words = [(u, s) for u, s in units if u.kind == "word"]
        if len(words) < 2:
            continue
        top = [u for u, _ in sorted(words, key=lambda us: -us[1])]
        shuffled = [u for u, _ in words]
        rng.shuffle(shuffled)
        for k in range(1, min(AOPC_K, len(words) - 1) + 1):
            batch += [delete_spans(texts[i], top[:k]), delete_spans(texts[i], shuffled[:k])]
            owners += [(i, "top"), (i, "random")]
    after = predictor.probabilities(batch).numpy() if batch else np.empty((0, probs.shape[1]))
    drops: dict[str, dict[int, list[float]]] = {"top": defaultdict(list), "random": defaultdict(list)}
    for (i, which), p in zip(owners, after, strict=True):
        drops[which][i].append(float(probs[i, predicted[i]] - p[predicted[i]]))
    return {
        which: mean_interval([float(np.mean(v)) for v in by_text.values()], seed) for which, by_text in drops.items()
    } | {"k": AOPC_K}


class ShortcutsAnalyzer(Analyzer):
    name = NAME
    needs_gradients = True
    description = "Captum attributions summed into words, label purity and deletion flips: flags shortcut words"

    def analyze(self, context: AnalysisContext) -> dict[str, Any]:
        data = context.task_data
        seed = int(context.results.config.get("seed", 0))
        options = read_options(ShortcutsOptions, context.options)
        evaluated = context.held_out_examples(options.shortcuts_max_texts)
        train = data.split("train")
        result = find_shortcuts(
            context.predictor,
            [e.text for e in evaluated],
            [e.text for e in train],
            [e.label for e in train],
            method=options.shortcuts_method,
            n_steps=options.shortcuts_steps,
            seed=seed,
            gold=[e.label for e in evaluated],
            min_support=options.shortcuts_min_support,
        )
        convergence = result["convergence"]
        result["warnings"] = (
            [
                f"{convergence['share_over_threshold']:.0%} of texts have a relative convergence delta above "
                f"{MAX_RELATIVE_DELTA:.0%} even with {result['fallback_steps']} steps: raise --shortcuts-steps "
                "(in bf16 or fp16 the rounding of the end-point logits can keep it there; --mixed-precision no "
                "attributes in fp32)"
            ]
            if convergence and convergence["share_over_threshold"] > 0
            else []
        )
        return result


@hookimpl
def mikiwame_report_sections(results: RunResults) -> list[ReportSection]:
    result = results.analysis(NAME, RESULT)
    if result is None:
        return []
    title = "Shortcut words (attribution + deletion)"
    return [
        ReportSection(NAME, title, 75, result, lambda: shortcuts_renderable(result), lambda: shortcuts_html(result))
    ]


@dataclass
class ShortcutsOptions:
    """shortcuts analyzer"""

    shortcuts_method: str = option(
        "ig",
        "ig (integrated gradients) or gxi proposes units that occlusion confirms; occlusion deletes every unit",
        choices=METHODS,
    )
    shortcuts_min_support: int = option(MIN_SUPPORT, "held-out texts predicted as the label that must contain a unit")
    shortcuts_steps: int = option(
        DEFAULT_STEPS, "integration steps (ig); a text that has not converged with them gets twice as many"
    )
    shortcuts_max_texts: int = option(DEFAULT_MAX_TEXTS, "evaluation texts attributed at most")


@hookimpl
def mikiwame_options():
    return ShortcutsOptions


@hookimpl
def mikiwame_register_analyzers(register):
    register(ShortcutsAnalyzer())


@hookimpl
def mikiwame_findings(results: RunResults) -> list[Finding]:
    result = results.analysis(NAME, RESULT)
    return [] if result is None else shortcut_findings(results, result)
