"""`errors`: what the saved model gets wrong, where, and how sure it was.

The model is loaded from the run directory and predicts every example afresh (not read back from
predictions.jsonl), so the list is the saved model's, whatever wrote the file. Slices say on which kinds of
text accuracy drops (each with n and a 95% Wilson interval); the training-set lists point at possible label
noise or hard cases: training examples the final model still gets wrong, and, when the run recorded per-epoch
training predictions (`--track-train`), the examples learned late or forgotten along the way. Slices the task
gives (JRTE's annotator votes: unanimous or split) come first. Every error is also written to
analyses/errors.csv, for a spreadsheet.
"""

from __future__ import annotations

import csv
import os
from collections import Counter, defaultdict
from pathlib import Path
from typing import Annotated, Any

import numpy as np

from mikiwame.framework import hookimpl
from mikiwame.framework.analysis import AnalysisContext, Analyzer
from mikiwame.framework.findings import Finding
from mikiwame.framework.japanese import has_latin_acronym, words
from mikiwame.framework.metrics import accuracy_estimate
from mikiwame.framework.results import RATE_ESTIMATE, ReportSection, RunResults
from mikiwame.framework.runfiles import AllOf, AnyOf, Between, Count, Fraction, Obj, damaged, read_json
from mikiwame.plugins.analyzers.errors_findings import errors_findings
from mikiwame.plugins.analyzers.errors_report import report_sections

NAME = "errors"
RARE_PIECE_MAX_COUNT = 0  # a word piece seen at most this often in the training texts counts as rare (unseen)
RARE_SHARE_HIGH = 0.2
MOST_CONFIDENT = 10
CSV_FILE = "errors.csv"
CSV_COLUMNS = ("split", "id", "gold", "predicted", "confidence", "gold_probability", "text")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
NO_DYNAMICS = (
    "this run did not record per-epoch training predictions, so 'learned late' cannot be told; "
    "re-run the recipe with --track-train (it writes train_dynamics.json)"
)
DYNAMICS = Obj(
    {
        "ids": list[Any],
        "epochs": list[Obj({"epoch": Count, "correct": list[int], "gold_probability": list[float]})],
    }
)

EXAMPLE = Obj(
    {"id": str | int, "text": str, "gold": str, "predicted": str, "confidence": Fraction, "gold_probability": Fraction}
)
LATE = Obj({"learned_at_epoch": Count | None, "forgotten": Count, "mean_gold_probability": Fraction})
PAIR = Obj({"gold": str, "predicted": str, "n": Count, "examples": Annotated[list[EXAMPLE], Between(1)]})  # type: ignore[valid-type]
SLICE = Obj({"feature": str, "value": str, "accuracy": RATE_ESTIMATE})
RESULT = Obj(
    {
        "errors": dict[
            str,
            Obj(  # type: ignore[misc]  # a schema, not a type
                {
                    "n": Count,
                    "accuracy": RATE_ESTIMATE,
                    "pairs": list[PAIR],  # type: ignore[valid-type]
                }
            ),
        ],
        "slices": dict[str, list[SLICE]],  # type: ignore[valid-type]
        "most_confident_errors": dict[str, list[EXAMPLE]],  # type: ignore[valid-type]
        "train_wrong": list[EXAMPLE],  # type: ignore[valid-type]
        "train_dynamics": AnyOf(
            Obj({"available": Annotated[bool, Between(0, 0)], "message": str}),
            Obj(
                {
                    "available": bool,
                    "learned_at_epoch_counts": dict[str, Count],
                    "n": Count,
                    "forgotten_at_least_once": Count,
                    "late_after_epoch": Count,
                    "late_or_never": list[AllOf(EXAMPLE, LATE)],  # type: ignore[valid-type]
                }
            ),
        ),
    }
)


def fresh_predictions(context: AnalysisContext) -> list[dict[str, Any]]:
    """Every example of the run, labelled again by the saved model."""
    rows = context.predictions
    predicted = context.predictor.predict([r["text"] for r in rows])
    return [
        {
            "id": r["id"],
            "split": r["split"],
            "text": r["text"],
            "gold": r["gold"],
            "predicted": p.label,
            "confidence": round(p.probabilities[p.label], 6),
            "gold_probability": round(p.probabilities[r["gold"]], 6),
        }
        for r, p in zip(rows, predicted, strict=True)
    ]


def task_slices(prediction: dict[str, Any]) -> dict[str, str]:
    """The slices the task gave a text (predictions.jsonl's `slices`, e.g. JRTE's annotator votes)."""
    given = prediction.get("slices")
    return {str(k): str(v) for k, v in given.items()} if isinstance(given, dict) else {}


def write_errors_csv(path: Path, rows: list[dict[str, Any]], given: dict[tuple[str, str], dict[str, str]]) -> Path:
    """Every misclassified example (every split, most confident first) as CSV, for a spreadsheet: UTF-8 with a
    byte-order mark, so Excel reads the Japanese. A cell that starts like a formula (= + - @) gets a leading
    apostrophe, so a spreadsheet shows a received text instead of evaluating it. Written under a name of this
    process's own and renamed (every process of a launch writes the same bytes)."""
    wrong = sorted((r for r in rows if r["predicted"] != r["gold"]), key=lambda r: (r["split"], -r["confidence"]))
    names = sorted({name for r in wrong for name in given[r["split"], r["id"]]})
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    with partial.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([*CSV_COLUMNS, *names])
        for r in wrong:
            cells = [*(r[c] for c in CSV_COLUMNS), *(given[r["split"], r["id"]].get(n, "") for n in names)]
            writer.writerow([_inert(c) for c in cells])
    os.replace(partial, path)
    return path


def _inert(cell: Any) -> Any:
    return f"'{cell}" if isinstance(cell, str) and cell[:1] in FORMULA_STARTS else cell


def errors_by_pair(rows: list[dict[str, Any]]) -> dict[str, Any]:
    wrong = sorted((r for r in rows if r["predicted"] != r["gold"]), key=lambda r: -r["confidence"])
    pairs: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in wrong:
        pairs[(r["gold"], r["predicted"])].append(r)
    return {
        "n": len(rows),
        "n_errors": len(wrong),
        "accuracy": accuracy_estimate([r["gold"] for r in rows], [r["predicted"] for r in rows]).to_dict(),
        "pairs": [
            {"gold": g, "predicted": p, "n": len(examples), "examples": examples}
            for (g, p), examples in sorted(pairs.items(), key=lambda kv: (-len(kv[1]), kv[0]))
        ],
    }


def _slice(feature: str, value: str, rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not rows:
        return None
    accuracy = accuracy_estimate([r["gold"] for r in rows], [r["predicted"] for r in rows])
    return {"feature": feature, "value": value, "accuracy": accuracy.to_dict()}


def _length_buckets(rows: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Quartiles of the split's own character lengths, so each bucket holds about a quarter of it."""
    lengths = np.asarray([len(r["text"]) for r in rows])
    edges = sorted({int(q) for q in np.quantile(lengths, [0.25, 0.5, 0.75])})
    buckets, low = [], 0
    for high in [*edges, int(lengths.max())]:
        members = [r for r in rows if low < len(r["text"]) <= high]
        if members:
            buckets.append((f"{low + 1}–{high} chars", members))
        low = high
    return buckets


class TextFeatures:
    """Per-text features the slices use: rare word pieces (saved tokenizer) and UniDic word classes. A model
    without a word-piece tokenizer (a `classifier:` run such as TF-IDF) has no rare-piece share."""

    def __init__(self, tokenizer: Any | None, train_texts: list[str]) -> None:
        self.tokenizer = tokenizer
        self.piece_counts: Counter[str] = Counter()
        for text in train_texts if tokenizer is not None else []:
            self.piece_counts.update(tokenizer.tokenize(text))

    def rare_share(self, text: str) -> float | None:
        if self.tokenizer is None:
            return None
        pieces = self.tokenizer.tokenize(text)
        unk = self.tokenizer.unk_token
        rare = sum(p == unk or self.piece_counts[p] <= RARE_PIECE_MAX_COUNT for p in pieces)
        return rare / max(len(pieces), 1)

    def describe(self, text: str) -> dict[str, Any]:
        tokens = words(text)
        return {
            "rare_share": self.rare_share(text),
            "abbreviation": has_latin_acronym(text) or any(w.is_katakana_abbreviation for w in tokens),
            "number": any(w.is_numeral for w in tokens),
            "named_entity": any(w.is_proper_noun for w in tokens),
        }


def slices(rows: list[dict[str, Any]], features: dict[tuple[str, str], dict[str, Any]]) -> list[dict[str, Any]]:
    """Accuracy on each slice of one split's rows; `features` is keyed by (split, id), ids need not be unique
    across splits."""
    found: list[dict[str, Any] | None] = [_slice("length", name, members) for name, members in _length_buckets(rows)]
    share = {r["id"]: features[r["split"], r["id"]]["rare_share"] for r in rows}
    found += [
        _slice("rare word pieces", "none", [r for r in rows if share[r["id"]] == 0]),
        _slice(
            "rare word pieces",
            f"≤ {RARE_SHARE_HIGH:.0%} of pieces",
            [r for r in rows if share[r["id"]] is not None and 0 < share[r["id"]] <= RARE_SHARE_HIGH],
        ),
        _slice(
            "rare word pieces",
            f"> {RARE_SHARE_HIGH:.0%} of pieces",
            [r for r in rows if share[r["id"]] is not None and share[r["id"]] > RARE_SHARE_HIGH],
        ),
    ]
    task_slices = sorted({item for r in rows for item in features[r["split"], r["id"]]["task"].items()})
    found += [
        _slice(name, value, [r for r in rows if features[r["split"], r["id"]]["task"].get(name) == value])
        for name, value in task_slices
    ]
    for feature, key in (
        ("abbreviation", "abbreviation"),
        ("number", "number"),
        ("named entity (固有名詞)", "named_entity"),
    ):
        found += [
            _slice(feature, "with", [r for r in rows if features[r["split"], r["id"]][key]]),
            _slice(feature, "without", [r for r in rows if not features[r["split"], r["id"]][key]]),
        ]
    return [s for s in found if s is not None]


def learning_dynamics(context: AnalysisContext, train_rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per training example: the epoch from which it stays correct, and how often it was forgotten
    (correct, then wrong: Toneva et al. 2019). Late = learned in the second half of the epochs, or never."""
    path = context.directory / "train_dynamics.json"
    if not path.is_file():
        return {"available": False, "message": NO_DYNAMICS}
    dynamics = read_json(path, DYNAMICS)
    by_id = {r["id"]: r for r in train_rows}
    if set(dynamics["ids"]) != set(by_id):
        return {"available": False, "message": "train_dynamics.json does not match this run's training split"}
    correct = np.asarray([e["correct"] for e in dynamics["epochs"]], dtype=bool)  # epochs × examples
    gold_probability = np.asarray([e["gold_probability"] for e in dynamics["epochs"]])
    epochs = [e["epoch"] for e in dynamics["epochs"]]
    stays = np.flip(np.logical_and.accumulate(np.flip(correct, 0), axis=0), 0)
    learned_at = [epochs[int(np.argmax(col))] if col.any() else None for col in stays.T]
    forgotten = (correct[:-1] & ~correct[1:]).sum(axis=0)
    half = epochs[(len(epochs) - 1) // 2]
    examples = []
    for i, example_id in enumerate(dynamics["ids"]):
        if learned_at[i] is None or learned_at[i] > half:
            examples.append(
                {
                    **by_id[example_id],
                    "learned_at_epoch": learned_at[i],
                    "forgotten": int(forgotten[i]),
                    "mean_gold_probability": round(float(gold_probability[:, i].mean()), 4),
                }
            )
    examples.sort(
        key=lambda r: (r["learned_at_epoch"] is not None, -(r["learned_at_epoch"] or 0), r["mean_gold_probability"])
    )
    histogram = Counter("never" if e is None else str(e) for e in learned_at)
    return {
        "available": True,
        "epochs": epochs,
        "late_after_epoch": half,
        "learned_at_epoch_counts": {k: histogram[k] for k in [*map(str, epochs), "never"] if k in histogram},
        "forgotten_at_least_once": int((forgotten > 0).sum()),
        "n": len(learned_at),
        "late_or_never": examples,
    }


class ErrorAnalyzer(Analyzer):
    name = NAME
    description = "misclassified examples by confusion pair, accuracy slices, confident errors, hard training examples"

    def analyze(self, context: AnalysisContext) -> dict[str, Any]:
        rows = fresh_predictions(context)
        by_split: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in rows:
            by_split[r["split"]].append(r)
        tokenizer = getattr(context.predictor, "tokenizer", None)
        features_of = TextFeatures(tokenizer, [r["text"] for r in by_split.get("train", [])])
        given = {(p["split"], p["id"]): task_slices(p) for p in context.predictions}
        features = {
            (r["split"], r["id"]): {**features_of.describe(r["text"]), "task": given[r["split"], r["id"]]} for r in rows
        }
        csv_path = write_errors_csv(context.directory / "analyses" / CSV_FILE, rows, given)
        held_out = [s for s in ("test", "validation") if s in by_split]
        train = by_split.get("train", [])
        return {
            "predicted_afresh": True,
            "csv": f"{csv_path.parent.name}/{csv_path.name}",
            "rare_piece_max_count": RARE_PIECE_MAX_COUNT,
            "errors": {split: errors_by_pair(members) for split, members in by_split.items()},
            "slices": {split: slices(by_split[split], features) for split in held_out},
            "most_confident_errors": {
                split: sorted(
                    (r for r in by_split[split] if r["predicted"] != r["gold"]), key=lambda r: -r["confidence"]
                )[:MOST_CONFIDENT]
                for split in held_out
            },
            "train_wrong": sorted((r for r in train if r["predicted"] != r["gold"]), key=lambda r: -r["confidence"]),
            "train_dynamics": learning_dynamics(context, train)
            if train
            else {"available": False, "message": "no training split"},
        }


# ---------------------------------------------------------------- report


def read_result(results: RunResults) -> dict[str, Any] | None:
    """analyses/errors.json through the validation layer, and each held-out split it slices also counted and
    ranked (the report reads the three together)."""
    result = results.analysis(NAME, RESULT)
    for split in result["slices"] if result else ():
        for key in ("errors", "most_confident_errors"):
            if split not in result[key]:
                path = results.directory / "analyses" / f"{NAME}.json"
                raise damaged(path, f"{key} has no {split!r}, which slices has", fix=results.rerun(NAME))
    return result


@hookimpl
def mikiwame_report_sections(results: RunResults) -> list[ReportSection]:
    result = read_result(results)
    return [] if result is None else report_sections(result)


@hookimpl
def mikiwame_register_analyzers(register):
    register(ErrorAnalyzer())


@hookimpl
def mikiwame_findings(results: RunResults) -> list[Finding]:
    result = read_result(results)
    return [] if result is None else errors_findings(results, result)
