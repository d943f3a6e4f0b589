"""`entity-bias`: does the saved model change its mind when one name is swapped for another?

For each evaluation text with an entity (UniDic 人名/地名, organisations from the gazetteer, a user's list),
K counterfactuals replace the entity's character span with K other names of the same group; nothing else in
the text changes. The originals go through one batched prediction, every probe (swaps, controls, templates)
through one more, de-duplicated: length-sorted full batches rather than a small call per probe kind or entity.
- flip rate: share of swaps whose predicted label differs from the original's (Wilson interval);
- |Δp|: absolute change in the probability of the originally predicted label (bootstrap interval);
- invariance failure: a flip or |Δp| > INVARIANCE_THRESHOLD;
- per entity: mean p(label | original) − p(label | swapped), the labels the entity itself pushes up;
- controls: the identity swap (the entity put back in place, same path) must change nothing; swapping a
  non-entity word for another word of the same length gives the baseline a text tolerates from any swap;
- templates: neutral sentences filled with each entity, the label distribution the entity alone induces.
docs/bias.md says what each number means.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
from rich.console import Group
from rich.table import Table

from mikiwame.framework import hookimpl, inert
from mikiwame.framework import html as h
from mikiwame.framework.analysis import AnalysisContext, Analyzer
from mikiwame.framework.entities import EntityLists, choose_substitutes, load_entity_lists, swap
from mikiwame.framework.figures import with_interval
from mikiwame.framework.findings import Finding
from mikiwame.framework.japanese import Span, located_words
from mikiwame.framework.metrics import MEAN, RATE, mean_interval, wilson
from mikiwame.framework.options import option, read_options
from mikiwame.framework.results import ReportSection, RunResults
from mikiwame.framework.runfiles import Count, Fraction, Nullable, Obj, damaged
from mikiwame.plugins.analyzers.entity_bias_findings import entity_bias_findings

NAME = "entity-bias"
K = 3  # counterfactuals per entity occurrence
INVARIANCE_THRESHOLD = 0.1  # |Δp| above this (or a flip) is an invariance failure
MIN_ENTITY_SWAPS = 6  # per-entity rows need at least this many swaps
TOP_ENTITIES = 15
TEMPLATES = ("○○が会見を開いた", "○○について発表があった", "○○の関係者が語った", "○○をめぐる話題")
TEMPLATE_ENTITIES = 20
DEFAULT_MAX_TEXTS = 2000
FLIPPED_SHOWN = 10  # flipped swaps kept as examples
PROBE = Obj(
    {"n": Count, "flip_rate": RATE, "mean_abs_delta": MEAN, "invariance_failure_rate": RATE, "unk_share": Fraction}
)
PREDICTION = Obj({"label": str, "p": Fraction})
ENTITY = Obj({"entity": str, "group": str, "swaps": Count, "flip_rate": RATE, "pushes": str, "gap": dict[str, float]})
RESULT = Obj(
    {
        "n_texts": Count,
        "n_texts_with_entities": Count,
        "k": Count,
        "invariance_threshold": float,
        "swaps": Nullable(PROBE),
        "identity_control": Nullable(PROBE),
        "non_entity_baseline": Nullable(PROBE),
        "entities": list[ENTITY],  # type: ignore[valid-type]  # a schema, not a type
        "templates": Obj(
            {
                "templates": list[str],
                "entities": list[Obj({"entity": str, "induced": str, "shift": float})],  # type: ignore[misc]
            }
        ),
    },
    {
        "flipped_examples": list[  # type: ignore[misc]
            Obj(
                {
                    "original": str,
                    "swapped": str,
                    "entity": str,
                    "group": str,
                    "substitute": str,
                    "before": PREDICTION,
                    "after": PREDICTION,
                }
            )
        ]
    },
)


class CachedPredictor:
    """Probabilities of each distinct text, computed once in one batched pass, so the identity control goes
    through exactly the path the swaps take."""

    def __init__(self, predictor: Any) -> None:
        self.predictor = predictor
        self.cache: dict[str, np.ndarray] = {}

    def __call__(self, texts: list[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self.cache))
        if missing:
            for text, p in zip(missing, self.predictor.probabilities(missing).numpy(), strict=True):
                self.cache[text] = p
        return np.asarray([self.cache[t] for t in texts]).reshape(len(texts), len(self.predictor.labels))


def _baseline_swaps(text: str, entities: list[Span], vocabulary: dict[int, list[str]], rng: random.Random):
    """A content word that is not part of an entity, swapped for another data-set word of the same length."""
    taken = [(e.start, e.end) for e in entities]
    words = [
        w
        for w in located_words(text)
        if w.is_content and not w.is_proper_noun and all(w.end <= s or w.start >= e for s, e in taken)
    ]
    if not words:
        return []
    word = rng.choice(words)
    original = text[word.start : word.end]
    options = [v for v in vocabulary.get(len(original), []) if v != original]
    span = Span(original, word.start, word.end, "word")
    return [swap(text, span, v) for v in rng.sample(options, min(K, len(options)))]


def _summary(originals: np.ndarray, swapped: np.ndarray, unk: list[bool], seed: int) -> dict[str, Any]:
    predicted = originals.argmax(-1)
    rows = np.arange(len(predicted))
    delta = swapped[rows, predicted] - originals[rows, predicted]
    flips = swapped.argmax(-1) != predicted
    failures = flips | (np.abs(delta) > INVARIANCE_THRESHOLD)
    return {
        "n": len(predicted),
        "flip_rate": wilson(int(flips.sum()), len(flips)),
        "mean_abs_delta": mean_interval(np.abs(delta).tolist(), seed),
        "max_abs_delta": float(np.abs(delta).max()) if len(delta) else None,
        "invariance_failure_rate": wilson(int(failures.sum()), len(failures)),
        "unk_share": float(np.mean(unk)) if unk else 0.0,
    }


def measure_entity_bias(
    predictor: Any, texts: list[str], lists: EntityLists, *, k: int = K, seed: int = 0
) -> dict[str, Any]:
    """The whole analysis on a predictor (`.labels`, `.tokenizer` or None, `.probabilities(texts)`)."""
    labels, tokenizer = predictor.labels, predictor.tokenizer
    rng = random.Random(seed)
    predict = CachedPredictor(predictor)
    vocabulary: dict[int, set[str]] = defaultdict(set)
    for text in texts:
        for w in located_words(text):
            if w.is_content and not w.is_proper_noun:
                vocabulary[w.end - w.start].add(text[w.start : w.end])
    by_length = {n: sorted(v) for n, v in vocabulary.items()}

    has_unk = {}

    def contains_unk(text: str) -> bool:
        """False for a model without word pieces (a fitted classifier): it has no [UNK] to fall into."""
        if tokenizer is None:
            return False
        if text not in has_unk:
            has_unk[text] = tokenizer.unk_token in tokenizer.tokenize(text)
        return has_unk[text]

    pairs: dict[str, list[tuple[int, str]]] = {"entity": [], "identity": [], "baseline": []}
    owners: list[tuple[str, str, str]] = []  # (entity text, group, substitute) per entity swap
    per_type: Counter = Counter()
    for i, text in enumerate(texts):
        entities = lists.entities(text)
        for entity in entities:
            per_type[entity.kind] += 1
            pairs["identity"].append((i, swap(text, entity, entity.text)))
            for substitute in choose_substitutes(entity, lists.pools.get(entity.group, []), k, rng, tokenizer):
                pairs["entity"].append((i, swap(text, entity, substitute)))
                owners.append((entity.text, entity.group, substitute))
        if entities:
            pairs["baseline"] += [(i, t) for t in _baseline_swaps(text, entities, by_length, rng)]

    results: dict[str, Any] = {}
    originals_all = predict(list(texts)) if texts else np.empty((0, len(labels)))
    templated = [e for e, _ in Counter(o[0] for o in owners).most_common(TEMPLATE_ENTITIES)]
    # Every probe in one batched pass: length-sorted batches of the whole set, not one small call per group.
    predict([t for items in pairs.values() for _, t in items] + [t for e in ["", *templated] for t in _filled(e)])
    for kind, items in pairs.items():
        if not items:
            results[kind] = None
            continue
        index = [i for i, _ in items]
        swapped = predict([t for _, t in items])
        unk_new = [contains_unk(t) and not contains_unk(texts[i]) for i, t in items]
        results[kind] = _summary(originals_all[index], swapped, unk_new, seed)
    entity_rows = _per_entity(pairs["entity"], owners, originals_all, predict, labels, seed)
    return {
        "n_texts": len(texts),
        "n_texts_with_entities": len({i for i, _ in pairs["identity"]}),
        "entities_by_type": dict(per_type),
        "labels": labels,
        "k": k,
        "invariance_threshold": INVARIANCE_THRESHOLD,
        "swaps": results["entity"],
        "identity_control": results["identity"],
        "non_entity_baseline": results["baseline"],
        "entities": entity_rows,
        "flipped_examples": _flipped_examples(pairs["entity"], owners, texts, originals_all, predict, labels),
        "templates": _templates(predict, labels, templated),
    }


def _flipped_examples(items, owners, texts, originals_all, predict, labels) -> list[dict[str, Any]]:
    """The swaps that flipped a prediction, largest change of the original label's probability first: the
    evidence a reader checks by eye (is the swapped text still the same news?)."""
    if not items:
        return []
    before = originals_all[[i for i, _ in items]]
    after = predict([t for _, t in items])
    rows = np.arange(len(items))
    predicted = before.argmax(-1)
    drop = before[rows, predicted] - after[rows, predicted]
    flipped = [j for j in np.argsort(-drop, kind="stable") if after[j].argmax() != predicted[j]]
    return [
        {
            "original": texts[items[j][0]],
            "swapped": items[j][1],
            "entity": owners[j][0],
            "group": owners[j][1],
            "substitute": owners[j][2],
            "before": {"label": labels[int(predicted[j])], "p": float(before[j, predicted[j]])},
            "after": {"label": labels[int(after[j].argmax())], "p": float(after[j].max())},
        }
        for j in flipped[:FLIPPED_SHOWN]
    ]


def _per_entity(items, owners, originals_all, predict, labels, seed) -> list[dict[str, Any]]:
    """Per original entity: flip rate and mean p(label | original) − p(label | swapped) for every label."""
    groups: dict[str, list[int]] = defaultdict(list)
    for j, (entity, _, _) in enumerate(owners):
        groups[entity].append(j)
    rows = []
    for entity, js in groups.items():
        if len(js) < MIN_ENTITY_SWAPS:
            continue
        index = [items[j][0] for j in js]
        before, after = originals_all[index], predict([items[j][1] for j in js])
        flips = after.argmax(-1) != before.argmax(-1)
        gap = (before - after).mean(0)
        rows.append(
            {
                "entity": entity,
                "group": owners[js[0]][1],
                "swaps": len(js),
                "flip_rate": wilson(int(flips.sum()), len(js)),
                "gap": {label: float(g) for label, g in zip(labels, gap, strict=True)},
                "pushes": labels[int(gap.argmax())],
            }
        )
    return sorted(rows, key=lambda r: (-r["flip_rate"]["rate"], -max(r["gap"].values())))


def _filled(entity: str) -> list[str]:
    return [t.replace("○○", entity) for t in TEMPLATES]


def _templates(predict: CachedPredictor, labels: list[str], entities: list[str]) -> dict[str, Any]:
    """Mean label distribution over neutral templates filled with each frequent entity, and with no entity."""
    empty = predict(_filled("")).mean(0)
    rows = []
    for entity in entities:
        p = predict(_filled(entity)).mean(0)
        rows.append(
            {
                "entity": entity,
                "distribution": {label: float(q) for label, q in zip(labels, p, strict=True)},
                "induced": labels[int((p - empty).argmax())],
                "shift": float((p - empty).max()),
            }
        )
    return {
        "templates": list(TEMPLATES),
        "empty": {label: float(q) for label, q in zip(labels, empty, strict=True)},
        "entities": sorted(rows, key=lambda r: -r["shift"]),
    }


class EntityBiasAnalyzer(Analyzer):
    name = NAME
    description = "entity-swap probes: flip rate, |Δp|, per-entity gaps, identity and non-entity controls"

    def analyze(self, context: AnalysisContext) -> dict[str, Any]:
        seed = int(context.results.config.get("seed", 0))
        options = read_options(EntityBiasOptions, context.options)
        run_options = context.options  # the entities plugin's options, read by name (no import across kinds)
        evaluated = context.held_out_examples(options.entity_bias_max_texts)
        lists = load_entity_lists(run_options.get("entities"))
        k = options.entity_bias_k
        result = measure_entity_bias(context.predictor, [e.text for e in evaluated], lists, k=k, seed=seed)
        result["mitigation"] = {
            "augment": run_options.get("augment") or "none",
            "mask_entities": bool(run_options.get("mask_entities")),
        }
        return result


RATE_COLUMNS = ("probe", "n", "flip rate [95%]", "mean |Δp| [95%]", "invariance failures", "new [UNK]")
ENTITY_COLUMNS = ("entity", "group", "swaps", "flip rate [95%]", "pushes", "gap")


def _rates_title(result: dict[str, Any]) -> tuple[str, str]:
    return (
        f"Entity swaps: {result['n_texts_with_entities']} of {result['n_texts']} evaluation texts have an "
        f"entity; K={result['k']} swaps each",
        f"invariance failure: a flip or |Δp| > {result['invariance_threshold']}; 95% intervals",
    )


def rate_rows(result: dict[str, Any]) -> list[list[str]]:
    """The swaps, the identity control and the non-entity baseline."""
    rows = []
    for title, key in (
        ("entity swaps", "swaps"),
        ("identity control (must be 0)", "identity_control"),
        ("non-entity word swaps (baseline)", "non_entity_baseline"),
    ):
        row = result[key]
        if row is None:
            rows.append([title, "0", "–", "–", "–", "–"])
            continue
        rows.append(
            [
                title,
                str(row["n"]),
                with_interval(row["flip_rate"]),
                with_interval(row["mean_abs_delta"], "{:.3f}"),
                with_interval(row["invariance_failure_rate"]),
                f"{row['unk_share']:.0%}",
            ]
        )
    return rows


def entity_rows(result: dict[str, Any]) -> list[list[str]]:
    return [
        [
            row["entity"],
            row["group"],
            str(row["swaps"]),
            with_interval(row["flip_rate"]),
            row["pushes"],
            f"{row['gap'][row['pushes']]:+.3f}",
        ]
        for row in result["entities"][:TOP_ENTITIES]
    ]


def _rich_table(headers: tuple[str, ...], rows: list[list[str]], title: str, caption: str | None = None) -> Table:
    table = Table(title=title, title_justify="left", caption=caption)
    for column in headers:
        table.add_column(column, justify="left" if column in ("probe", "entity", "group", "pushes") else "right")
    for row in rows:
        table.add_row(*map(inert.text, row))
    return table


FLIPPED_TITLE = "Swaps that flipped the prediction (largest drop of the original label first)"
FLIPPED_COLUMNS = ("original → swapped", "entity → substitute", "before (p)", "after (p)")


def flipped_rows(result: dict[str, Any], shown: int) -> list[list[str]]:
    return [
        [
            f"{e['original']} → {e['swapped']}",
            f"{e['entity']} → {e['substitute']} ({e['group']})",
            f"{e['before']['label']} ({e['before']['p']:.2f})",
            f"{e['after']['label']} ({e['after']['p']:.2f})",
        ]
        for e in result.get("flipped_examples", [])[:shown]
    ]


TEMPLATE_TITLE = "templates (○○が会見を開いた, ...): label each entity alone pushes up most"
ENTITY_TITLE = "Entities whose swaps change predictions most"


def entity_bias_html(result: dict[str, Any]) -> str:
    title, caption = _rates_title(result)
    parts = [h.table(RATE_COLUMNS, rate_rows(result), f"{title}; {caption}", numeric=range(1, 6))]
    if result["entities"]:
        parts.append(h.table(ENTITY_COLUMNS, entity_rows(result), ENTITY_TITLE, numeric=(2, 3, 5)))
    flipped = flipped_rows(result, FLIPPED_SHOWN)
    if flipped:
        parts.append(h.table(FLIPPED_COLUMNS, flipped, FLIPPED_TITLE))
    templates = result["templates"]["entities"][:5]
    if templates:
        rows = [[r["entity"], r["induced"], f"+{r['shift']:.2f}"] for r in templates]
        caption = f"{TEMPLATE_TITLE}; templates: {' / '.join(result['templates']['templates'])}"
        parts.append(h.table(("entity", "pushes up", "shift"), rows, caption, numeric=(2,)))
    return h.join(parts)


def read_result(results: RunResults) -> dict[str, Any] | None:
    """analyses/entity-bias.json through the validation layer, each entity's `pushes` one of its `gap` labels."""
    result = results.analysis(NAME, RESULT)
    for row in result["entities"] if result else ():
        if row["pushes"] not in row["gap"]:
            path = results.directory / "analyses" / f"{NAME}.json"
            raise damaged(
                path, f"entity {row['entity']!r} pushes {row['pushes']!r}, not in its gap", fix=results.rerun(NAME)
            )
    return result


@hookimpl
def mikiwame_report_sections(results: RunResults) -> list[ReportSection]:
    result = read_result(results)
    if result is None:
        return []

    def render() -> Group:
        parts: list[Any] = [_rich_table(RATE_COLUMNS, rate_rows(result), *_rates_title(result))]
        if result["entities"]:
            parts.append(_rich_table(ENTITY_COLUMNS, entity_rows(result), ENTITY_TITLE))
        flipped = flipped_rows(result, 3)
        if flipped:
            parts.append(_rich_table(FLIPPED_COLUMNS, flipped, FLIPPED_TITLE))
        templates = result["templates"]["entities"][:5]
        if templates:
            parts.append(inert.text(TEMPLATE_TITLE))
            parts += [inert.text(f"  {r['entity']} → {r['induced']} (+{r['shift']:.2f})") for r in templates]
        return Group(*parts)

    return [ReportSection(NAME, "Entity bias (swap probes)", 76, result, render, lambda: entity_bias_html(result))]


@dataclass
class EntityBiasOptions:
    """entity-bias analyzer"""

    entity_bias_k: int = option(K, "counterfactuals per entity occurrence")
    entity_bias_max_texts: int = option(DEFAULT_MAX_TEXTS, "evaluation texts probed at most")


@hookimpl
def mikiwame_options():
    return EntityBiasOptions


@hookimpl
def mikiwame_register_analyzers(register):
    register(EntityBiasAnalyzer())


@hookimpl
def mikiwame_findings(results: RunResults) -> list[Finding]:
    result = read_result(results)
    return [] if result is None else entity_bias_findings(results, result)
