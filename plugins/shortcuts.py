"""`shortcuts`: words the saved model leans on that carry the label in the training data, proven by deletion.

Three pieces of evidence, each measured on the evaluation texts (validation and test; the training texts when a
run has none), must agree before a word is flagged (docs/shortcuts.md states the rule):
1. attribution: integrated gradients (or gradient × input) of the predicted class logit, summed from word
   pieces into MeCab words and merged noun spans; a unit's *share* in a text is its attribution over the sum of
   the absolute attributions of all pieces of that text. Mean share per (unit, predicted label), with a 95%
   bootstrap interval and support (texts);
2. label purity: the share of the training texts containing the unit that carry that label (as `token-stats`
   counts it);
3. faithfulness: deleting the unit from every text it pulled (predicted as the label, positive attribution)
   flips that many predictions (Wilson interval), and lowers the predicted-class probability.
Per text, comprehensiveness (ferret's AOPC) deletes the top-1..k words and averages the probability drop,
against a control that deletes as many random words.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from typing import Any

import numpy as np
from scipy import stats

from mikiwame.framework import hookimpl
from mikiwame.framework.analysis import AnalysisContext
from mikiwame.framework.attribution import MAX_RELATIVE_DELTA, METHODS, BatchAttributor, TextAttribution
from mikiwame.framework.japanese import Span, located_words, normalise, unit_spans
from mikiwame.framework.results import ReportSection, RunResults

from .shortcuts_report import shortcuts_html, shortcuts_renderable
from .token_stats import text_units

NAME = "shortcuts"
# The flagging rule. docs/shortcuts.md states these values and the tests use these very constants.
MIN_SUPPORT = 10  # evaluation texts predicted as the label that contain the unit
MIN_ATTRIBUTION_SHARE = 0.2  # mean share of the text's total |attribution| that goes to the unit
MIN_PURITY = 0.8  # share of the training texts containing the unit that carry the label
MIN_FLIP_RATE = 0.5  # share of the predictions the unit pulled that flip when it is deleted
CANDIDATES = 15  # (unit, label) pairs, highest mean share first, that are tested by deletion
MIN_GOLD_SUPPORT = 3  # misclassified texts of one gold label containing the unit
AOPC_K = 3  # comprehensiveness deletes the top 1..AOPC_K words of each text
EXAMPLES = 3
ATTRIBUTED_EXAMPLES = 12  # evaluation texts (errors first) saved with every word's share, for highlighting
DEFAULT_STEPS = 32
DEFAULT_MAX_TEXTS = 2000


def _wilson(k: int, n: int) -> dict[str, Any]:
    if n == 0:
        return {"k": 0, "n": 0, "rate": None, "low": None, "high": None}
    ci = stats.binomtest(k, n).proportion_ci(method="wilson")
    return {"k": k, "n": n, "rate": k / n, "low": float(ci.low), "high": float(ci.high)}


def _mean_interval(values: list[float], seed: int) -> dict[str, Any]:
    data = np.asarray(values, dtype=float)
    if len(data) < 2 or np.ptp(data) == 0:
        mean = float(data.mean()) if len(data) else None
        return {"mean": mean, "low": mean, "high": mean, "n": len(data)}
    ci = stats.bootstrap((data,), np.mean, n_resamples=999, method="percentile", random_state=seed)
    return {
        "mean": float(data.mean()),
        "low": float(ci.confidence_interval.low),
        "high": float(ci.confidence_interval.high),
        "n": len(data),
    }


def delete_spans(text: str, spans: list[Span]) -> str:
    """The text with the given character spans cut out (the rest untouched)."""
    keep = [True] * len(text)
    for s in spans:
        keep[s.start : s.end] = [False] * (s.end - s.start)
    return "".join(c for c, k in zip(text, keep, strict=True) if k)


def unit_scores(text: str, attribution: TextAttribution, units: list[Span] | None = None) -> list[tuple[Span, float]]:
    """Each unit of the text (default: its content words and noun spans) with its share: the attributions of the
    pieces starting inside it, over the sum of absolute piece attributions of the text."""
    total = sum(abs(float(s)) for s, span in zip(attribution.scores, attribution.spans, strict=True) if span) or 1.0
    starts = [(span[0], float(s)) for s, span in zip(attribution.scores, attribution.spans, strict=True) if span]
    units = unit_spans(text) if units is None else units
    return [(u, sum(s for at, s in starts if u.start <= at < u.end) / total) for u in units]


def word_shares(text: str, attribution: TextAttribution) -> list[list[float]]:
    """[start, end, share] for every MeCab word of the text, particles included: what a report highlights."""
    spans = [Span(w.surface, w.start, w.end, "word") for w in located_words(text)]
    return [[u.start, u.end, round(share, 4)] for u, share in unit_scores(text, attribution, spans)]


def training_counts(texts: list[str], labels: list[str]) -> dict[str, Counter]:
    counts: dict[str, Counter] = defaultdict(Counter)
    for text, label in zip(texts, labels, strict=True):
        for units in text_units(text).values():
            for unit in units:
                counts[unit][label] += 1
    return counts


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
) -> dict[str, Any]:
    """The whole analysis on a predictor (`.attributor(...)`, `.labels`, `.probabilities(texts)`); with
    the texts' `gold` labels, the misclassified texts are also attributed to their gold class."""
    labels = predictor.labels
    probs = predictor.probabilities(texts).numpy()
    predicted = probs.argmax(-1)
    attributor = predictor.attributor(method=method, n_steps=n_steps)
    attributions = attributor.attribute(texts, [int(p) for p in predicted])
    per_text = [unit_scores(t, a) for t, a in zip(texts, attributions, strict=True)]

    shares: dict[tuple[str, str], list[float]] = defaultdict(list)
    pulled: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, units in enumerate(per_text):
        best: dict[str, float] = {}
        for unit, share in units:
            key = normalise(unit.text)
            best[key] = max(best.get(key, -np.inf), share)
        for key, share in best.items():
            pair = (key, labels[predicted[i]])
            shares[pair].append(share)
            if share > 0:
                pulled[pair].append(i)
    counts = training_counts(train_texts, train_labels)
    ranked = sorted(
        (pair for pair, values in shares.items() if len(values) >= MIN_SUPPORT),
        key=lambda pair: (-float(np.mean(shares[pair])), pair),
    )[:CANDIDATES]

    deleted_texts: list[str] = []
    jobs: list[tuple[tuple[str, str], int]] = []
    for pair in ranked:
        for i in pulled[pair]:
            spans = [u for u, _ in per_text[i] if normalise(u.text) == pair[0]]
            deleted_texts.append(delete_spans(texts[i], spans))
            jobs.append((pair, i))
    after = predictor.probabilities(deleted_texts).numpy() if deleted_texts else np.empty((0, len(labels)))
    flips: dict[tuple[str, str], list[bool]] = defaultdict(list)
    drops: dict[tuple[str, str], list[float]] = defaultdict(list)
    for (pair, i), p in zip(jobs, after, strict=True):
        flips[pair].append(bool(p.argmax() != predicted[i]))
        drops[pair].append(float(probs[i, predicted[i]] - p[predicted[i]]))

    candidates = []
    for pair in ranked:
        unit, label = pair
        train = counts.get(unit, Counter())
        n_train = sum(train.values())
        purity = train[label] / n_train if n_train else 0.0
        share = _mean_interval(shares[pair], seed)
        flip = _wilson(sum(flips[pair]), len(flips[pair]))
        flagged = (
            len(shares[pair]) >= MIN_SUPPORT
            and share["mean"] >= MIN_ATTRIBUTION_SHARE
            and purity >= MIN_PURITY
            and (flip["rate"] or 0.0) >= MIN_FLIP_RATE
        )
        examples = [
            {
                "text": texts[i],
                "spans": [[u.start, u.end] for u, _ in per_text[i] if normalise(u.text) == unit],
                "words": word_shares(texts[i], attributions[i]),
            }
            for i in pulled[pair][:EXAMPLES]
        ]
        candidates.append(
            {
                "unit": unit,
                "label": label,
                "support": len(shares[pair]),
                "attribution_share": share,
                "train_count": n_train,
                "train_purity": purity,
                "deletion_flip_rate": flip,
                "deletion_probability_drop": _mean_interval(drops[pair], seed),
                "flagged": bool(flagged),
                "examples": examples,
            }
        )
    deltas = np.asarray([a.relative_delta for a in attributions]) if method == "ig" else np.empty(0)
    return {
        "method": method,
        "n_steps": n_steps,
        "n_texts": len(texts),
        "labels": labels,
        "thresholds": {
            "min_support": MIN_SUPPORT,
            "min_attribution_share": MIN_ATTRIBUTION_SHARE,
            "min_purity": MIN_PURITY,
            "min_flip_rate": MIN_FLIP_RATE,
            "max_relative_delta": MAX_RELATIVE_DELTA,
        },
        "convergence": _convergence(deltas),
        "comprehensiveness": _aopc(predictor, texts, per_text, probs, predicted, seed),
        "against_gold": _against_gold(attributor, texts, gold, predicted, labels, seed) if gold else None,
        "candidates": candidates,
        "flagged": [c for c in candidates if c["flagged"]],
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


def _against_gold(
    attributor: BatchAttributor, texts: list[str], gold: list[str], predicted: np.ndarray, labels: list[str], seed: int
) -> dict[str, Any]:
    """In the misclassified texts, the units whose attribution to the *gold* class is most negative: what
    argued against the right answer."""
    wrong = [i for i, g in enumerate(gold) if labels.index(g) != predicted[i]]
    attributions = attributor.attribute([texts[i] for i in wrong], [labels.index(gold[i]) for i in wrong])
    shares: dict[tuple[str, str], list[float]] = defaultdict(list)
    for i, attribution in zip(wrong, attributions, strict=True):
        best: dict[str, float] = {}
        for unit, share in unit_scores(texts[i], attribution):
            best[normalise(unit.text)] = min(best.get(normalise(unit.text), np.inf), share)
        for unit, share in best.items():
            shares[(unit, gold[i])].append(share)
    ranked = sorted(
        (pair for pair, v in shares.items() if len(v) >= MIN_GOLD_SUPPORT), key=lambda pair: np.mean(shares[pair])
    )
    return {
        "n_errors": len(wrong),
        "units": [
            {"unit": u, "gold": g, "attribution_share": _mean_interval(shares[(u, g)], seed)}
            for u, g in ranked[:CANDIDATES]
        ],
    }


def _convergence(deltas: np.ndarray) -> dict[str, Any] | None:
    if deltas.size == 0:
        return None
    return {
        "median_relative_delta": float(np.median(deltas)),
        "max_relative_delta": float(deltas.max()),
        "share_over_threshold": float((deltas > MAX_RELATIVE_DELTA).mean()),
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
        which: _mean_interval([float(np.mean(v)) for v in by_text.values()], seed) for which, by_text in drops.items()
    } | {"k": AOPC_K}


class ShortcutsAnalyzer:
    name = NAME
    needs_gradients = True
    description = "Captum attributions summed into words, label purity and deletion flips: flags shortcut words"

    def analyze(self, context: AnalysisContext) -> dict[str, Any]:
        data = context.task_data
        seed = int(context.results.config.get("seed", 0))
        evaluated = context.held_out_examples(int(context.options.get("shortcuts_max_texts") or DEFAULT_MAX_TEXTS))
        train = data.split("train")
        result = find_shortcuts(
            context.predictor,
            [e.text for e in evaluated],
            [e.text for e in train],
            [e.label for e in train],
            method=context.options.get("shortcuts_method") or "ig",
            n_steps=int(context.options.get("shortcuts_steps") or DEFAULT_STEPS),
            seed=seed,
            gold=[e.label for e in evaluated],
        )
        convergence = result["convergence"]
        result["warnings"] = (
            [
                f"{convergence['share_over_threshold']:.0%} of texts have a relative convergence delta above "
                f"{MAX_RELATIVE_DELTA:.0%}: raise --shortcuts-steps"
            ]
            if convergence and convergence["share_over_threshold"] > 0
            else []
        )
        return result


@hookimpl
def mikiwame_report_sections(results: RunResults) -> list[ReportSection]:
    result = results.analyses.get(NAME)
    if result is None:
        return []
    title = "Shortcut words (attribution + deletion)"
    return [
        ReportSection(NAME, title, 75, result, lambda: shortcuts_renderable(result), lambda: shortcuts_html(result))
    ]


@hookimpl
def mikiwame_add_arguments(parser):
    group = parser.add_argument_group("shortcuts analyzer")
    group.add_argument("--shortcuts-method", choices=METHODS, default="ig", help="ig (integrated gradients) or gxi")
    group.add_argument("--shortcuts-steps", type=int, default=DEFAULT_STEPS, help="integration steps (ig)")
    group.add_argument(
        "--shortcuts-max-texts", type=int, default=DEFAULT_MAX_TEXTS, help="evaluation texts attributed at most"
    )


@hookimpl
def mikiwame_register_analyzers(register):
    register(ShortcutsAnalyzer())
