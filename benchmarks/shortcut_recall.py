"""The `shortcuts` detector judged by the occlusion oracle: recall and precision of the units the model really
relies on, and how stable the flagged set is across training seeds.

    python benchmarks/shortcut_recall.py                                   # 3 corpora x 3 seeds, tiny from scratch
    python benchmarks/shortcut_recall.py --corpora livedoor --seeds 1 2 3 --base runs/livedoor-mlm

For each corpus and seed a tiny model is fine-tuned with the recipe defaults (1,000 training texts, 8 epochs),
then on its held-out texts the oracle deletes every unit with enough support (plugins/analyzers/occlusion.py) and the
default detector (integrated gradients proposes, occlusion confirms) flags what it flags. The reference is the
oracle's relied-on units (flip rate ≥ 0.5, support ≥ 10, purity ≥ 0.8, overlapping units folded). Per row:
recall, precision, the oracle units the detector missed, and those with flip rate ≥ 0.7 it missed (the goal: none);
per corpus, the mean pairwise Jaccard index of the flagged sets over the seeds (and of the oracle's sets: what
varies with the seed is the model), and the units whose oracle flip
rate reached 0.7 in some seed but that are not flagged in every seed (with the counts of seeds: a model trained
with another seed may not lean on the unit at all, which the oracle column tells).

Corpora: livedoor titles and JRTE pn from ../shared/data (or --data / MIKIWAME_SHARED_DATA), read in place; and
the bundled headlines with a series tag planted the way livedoor has them (`planted_headlines`), since the
clean bundled set is too small for any unit to reach the support.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import itertools
import json
import random
import tempfile
import time
from pathlib import Path

import torch
from corpora import REPO, shared_data
from planted_shapes import SHAPES, Shape, batches, delete_tag, plant

from mikiwame.framework.analysis import AnalysisContext
from mikiwame.framework.config import RunConfig
from mikiwame.framework.metrics import wilson
from mikiwame.framework.plugins import build_plugin_set
from mikiwame.framework.results import RunResults
from mikiwame.framework.runner import run, user_errors_exit
from mikiwame.framework.task import Example
from mikiwame.plugins.analyzers.occlusion import (
    MIN_FLIP_RATE,
    MIN_SUPPORT,
    HeldOut,
    TrainingUnits,
    judge,
    occlusion_oracle,
)
from mikiwame.plugins.analyzers.shortcuts import DEFAULT_MAX_TEXTS, find_shortcuts

HEADLINES = REPO / "data" / "headlines" / "headlines.tsv"
TAG, TAG_LABEL = "【話題】", "economy"  # planted at the end of most economy headlines, its word 話題 elsewhere too


def planted_headlines(path: Path, seed: int = 0) -> Path:
    """The bundled headlines with a livedoor-like series tag: 【話題】 appended to 80% of one label's texts (in
    every split, as a corpus artefact is), and the bare word 話題 put into 20% of the other labels' texts, so the
    word alone is impure while the bracketed tag is pure."""
    with HEADLINES.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    rng = random.Random(seed)
    for r in rows:
        if r["label"] == TAG_LABEL and rng.random() < 0.8:
            r["text"] = f"{r['text']}{TAG}"
        elif r["label"] != TAG_LABEL and rng.random() < 0.2:
            r["text"] = f"話題の{r['text']}"
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), delimiter="\t")
        writer.writeheader()
        writer.writerows(rows)
    return path


def corpus_task(corpus: str, data: Path) -> tuple[str, Path]:
    """The task and data path of one corpus (the bundled headlines as they are)."""
    return {
        "livedoor": ("livedoor", data / "livedoor" / "ldcc-20140209.tar.gz"),
        "jrte-pn": ("jrte-pn", data / "jrte" / "pn.tsv"),
        "headlines": ("headlines", HEADLINES),
    }[corpus]


def corpus_config(
    corpus: str,
    data: Path,
    work: Path,
    seed: int,
    base: str,
    peft: str = "auto",
    lr: float | None = None,
    planted: Path | None = None,
) -> RunConfig:
    """The recipe defaults (lora_headlines with --model tiny --train-size 1000 --epochs 8) for one corpus; all 468
    training headlines of the bundled set (with 【話題】 planted, or the `planted` TSV of text, label and split
    the shapes mode writes)."""
    if planted is not None:
        task, path, options = "csv", planted, {"split_column": "split"}
    elif corpus == "headlines":
        task, path, options = "headlines", planted_headlines(work / "planted_headlines.tsv"), {}
    else:
        task, path, options = *corpus_task(corpus, data), {}
    # the bundled set is small: smaller batches (more steps) at a learning rate a tiny model learns it with
    small = (
        {"lr": 1e-3, "batch_size": 8, "tiny_vocab_size": 2000, "max_length": 48, "epochs": 8}
        if corpus == "headlines"
        else {}
    ) | ({"lr": lr} if lr is not None else {})
    return RunConfig.of(
        recipe="shortcut_recall",
        task=task,
        data=str(path),
        model=base,
        peft=peft,
        train_size=None if corpus == "headlines" else 1000,
        epochs=small.pop("epochs", 8),
        patience=3,
        seed=seed,
        output_dir=str(work / "runs"),
        options=options,
        **small,
    )


def measure(run_dir: Path, seed: int, shapes: dict[str, Shape] | None = None) -> dict:
    """The oracle and the default detector on one finished run's held-out texts, and the detector's score; with
    planted `shapes` (label -> shape), one row per shape."""
    results = RunResults.load(run_dir)
    context = AnalysisContext(results, build_plugin_set(), {})
    evaluated = context.held_out_examples(DEFAULT_MAX_TEXTS)
    train = context.task_data.split("train")
    texts = [e.text for e in evaluated]
    started = time.perf_counter()
    training = TrainingUnits([e.text for e in train], [e.label for e in train])
    held_out = HeldOut.predict(context.predictor, texts, training)
    oracle = occlusion_oracle(context.predictor, held_out, training, seed=seed)
    oracle_seconds = time.perf_counter() - started
    started = time.perf_counter()
    detected = find_shortcuts(
        context.predictor,
        texts,
        [e.text for e in train],
        [e.label for e in train],
        seed=seed,
        gold=[e.label for e in evaluated],
    )
    return {
        "run": str(run_dir),
        "n_texts": len(texts),
        "peft": results.metrics["model"]["peft"],
        "test_accuracy": round(results.metrics["after"]["test"]["accuracy"]["value"], 3),
        "oracle_seconds": round(oracle_seconds, 1),
        "detector_seconds": round(time.perf_counter() - started, 1),
        "oracle": [(r["unit"], r["label"], r["deletion_flip_rate"]["rate"]) for r in oracle["relied_on"]],
        "flagged": [(r["unit"], r["label"]) for r in detected["flagged"]],
        **judge(detected["flagged"], oracle["relied_on"]),
        "shapes": [
            shape_row(context, evaluated, held_out, detected["flagged"], shape, label)
            for label, shape in (shapes or {}).items()
        ],
    }


def _bare(unit: str) -> str:
    return "".join(unit.split())


def shape_row(
    context: AnalysisContext,
    evaluated: list[Example],
    held_out: HeldOut,
    flagged: list[dict],
    shape: Shape,
    label: str,
) -> dict:
    """One planted shape judged by the benchmark's own oracle: deleting the exact planted tag from the held-out
    texts that carry it and are predicted as its label (the whole-unit flip rate; relied on at MIN_FLIP_RATE
    with the rule's support), the test accuracy on the texts carrying it, whether a flagged unit of its label is
    the whole tag (spaces aside), and the flagged units that are fragments of it or hold more than it."""
    labels = held_out.labels
    carrying = [i for i, t in enumerate(held_out.texts) if shape.tag in t]
    support = [i for i in carrying if labels[held_out.predicted[i]] == label]
    after = context.predictor.probabilities([delete_tag(held_out.texts[i], shape) for i in support]).numpy()
    flips = sum(int(p.argmax() != held_out.predicted[i]) for i, p in zip(support, after, strict=True))
    tested = [i for i in carrying if evaluated[i].split == "test"]
    right = sum(int(labels[held_out.predicted[i]] == evaluated[i].label) for i in tested)
    unit = _bare(shape.unit)
    touching = [
        f["unit"] for f in flagged if f["label"] == label and (_bare(f["unit"]) in unit or unit in _bare(f["unit"]))
    ]
    whole = wilson(flips, len(support))
    return {
        "shape": shape.name,
        "kind": shape.kind,
        "tag": shape.tag,
        "label": label,
        "whole_flip": whole,
        "relied_on": len(support) >= MIN_SUPPORT and (whole["rate"] or 0.0) >= MIN_FLIP_RATE,
        "tagged_test_accuracy": wilson(right, len(tested)),
        "found_whole": any(_bare(u) == unit for u in touching),
        "touching": touching,
    }


def planted_runs(
    corpus: str, data: Path, work: Path, seed: int, test: str, purity: float, base: str, peft: str, lr: float | None
) -> list[dict]:
    """Every shape planted into the corpus, one shape per label per run (so 24 shapes take 4 runs on the 6
    headline labels), each run fine-tuned and measured like the corpus rows."""
    task, path = corpus_task(corpus, data)
    loaded = build_plugin_set().tasks.get(task).load(RunConfig.of(task=task, data=str(path), seed=seed))
    rows = []
    for n, shapes in enumerate(batches(SHAPES, loaded.labels)):
        examples = plant(loaded.examples, shapes, purity=purity, test=test, seed=seed)
        tsv = work / f"planted-{n}.tsv"
        with tsv.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh, delimiter="\t")
            writer.writerow(["text", "label", "split"])
            writer.writerows((e.text, e.label, e.split) for e in examples)
        config = corpus_config(corpus, data, work / f"run-{n}", seed, base, peft, lr, planted=tsv)
        rows.append(measure(run(config), seed, shapes))
    return rows


def shape_table(rows: list[dict]) -> None:
    """Per shape over the seeds and test splits: relied on, found whole, fragments flagged, whole flip rates and
    the accuracy on tagged test texts; then the totals the goals are stated on."""
    per_shape: dict[str, list[dict]] = {}
    for r in rows:
        for shape in r.get("shapes", []):
            per_shape.setdefault(shape["shape"], []).append(shape | {"test": r["test"], "seed": r["seed"]})
    print(
        "\n| shape | kind | tag | test split | seeds relied on | found whole | other flags touching it | "
        "whole-tag flip (mean) | accuracy on tagged test texts (mean) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    relied = found = touching = whole = 0
    strong_missed = []
    for name, shapes in per_shape.items():
        for test in sorted({s["test"] for s in shapes}):
            these = [s for s in shapes if s["test"] == test]
            on = [s for s in these if s["relied_on"]]
            hits = [s for s in on if s["found_whole"]]
            extra = sum(len(s["touching"]) - s["found_whole"] for s in these)
            relied, found = relied + len(on), found + len(hits)
            touching += sum(len(s["touching"]) for s in these)
            whole += sum(s["found_whole"] for s in these)
            strong_missed += [
                (name, test, s["seed"]) for s in these if (s["whole_flip"]["rate"] or 0) >= 0.7 and not s["found_whole"]
            ]
            flip = [s["whole_flip"]["rate"] for s in these if s["whole_flip"]["rate"] is not None]
            acc = [s["tagged_test_accuracy"]["rate"] for s in these if s["tagged_test_accuracy"]["rate"] is not None]
            print(
                f"| {name} | {these[0]['kind']} | `{these[0]['tag'].strip()}` | {test} | {len(on)}/{len(these)} | "
                f"{len(hits)}/{len(on)} | {extra} | {sum(flip) / len(flip) if flip else float('nan'):.2f} | "
                f"{sum(acc) / len(acc) if acc else float('nan'):.2f} |"
            )
    print(
        f"\nshapes: recall {found}/{relied} = {found / relied if relied else float('nan'):.3f} (relied-on plants "
        f"found whole); precision {whole}/{touching} = {whole / touching if touching else float('nan'):.3f} (flagged "
        f"units touching a plant that are the whole plant); whole-flip >= 0.7 missed: {strong_missed or 'none'}"
    )


def jaccard(sets: list[set]) -> float | None:
    """Mean pairwise Jaccard index of the flagged sets (None with fewer than two)."""
    pairs = [len(a & b) / len(a | b) if a | b else 1.0 for a, b in itertools.combinations(sets, 2)]
    return sum(pairs) / len(pairs) if pairs else None


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpora", nargs="+", default=["headlines", "livedoor", "jrte-pn"])
    p.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    p.add_argument("--base", default="tiny", help="tiny (from scratch) or a pre-trained base (recipes/pretrain_mlm.py)")
    p.add_argument(
        "--peft",
        default="auto",
        help="auto: full fine-tuning from scratch, LoRA on a pre-trained base (the recipe's choice); or any --peft",
    )
    p.add_argument(
        "--lr",
        type=float,
        help="fine-tuning learning rate (default: the method's own; --peft full --lr 1e-3 fine-tunes a small "
        "pre-trained base the way the from-scratch rows are, where full's default for a pre-trained model, 5e-5, "
        "is meant for a large one)",
    )
    p.add_argument("--data", help="the shared corpora folder (default ../shared/data)")
    p.add_argument("--output", type=Path, help="write every row as JSON here")
    p.add_argument(
        "--keep",
        type=Path,
        help="keep the runs in this folder (default: a temporary one, deleted), to look into a missed unit with "
        "`mikiwame analyze RUN shortcuts`",
    )
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--shapes",
        nargs="+",
        choices=("iid", "anti"),
        help="plant the tags of benchmarks/planted_shapes.py instead (one row per shape), with the test split "
        "planted like training (iid) or anti-correlated (anti: the tag in half of the other labels' test texts)",
    )
    p.add_argument("--purity", type=float, default=0.9, help="share of a label's training texts a shape is put in")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = shared_data(args.data) if set(args.corpora) - {"headlines"} else REPO
    rows = []
    keep = contextlib.nullcontext(args.keep) if args.keep else tempfile.TemporaryDirectory()
    with keep as tmp:
        if args.shapes:
            for corpus, test, seed in itertools.product(args.corpora, args.shapes, args.seeds):
                work = Path(tmp) / f"{corpus}-{test}-{seed}"
                work.mkdir(parents=True, exist_ok=True)
                for row in planted_runs(corpus, data, work, seed, test, args.purity, args.base, args.peft, args.lr):
                    rows.append({"corpus": corpus, "test": test, "seed": seed, "base": args.base, **row})
                    print(json.dumps({k: v for k, v in rows[-1].items() if k != "run"}, ensure_ascii=False), flush=True)
            shape_table(rows)
            if args.output:
                args.output.write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")
            return
        for corpus in args.corpora:
            flagged, found, strong = [], [], []
            for seed in args.seeds:
                work = Path(tmp) / f"{corpus}-{seed}"
                work.mkdir(parents=True, exist_ok=True)
                row = {"corpus": corpus, "seed": seed, "base": args.base}
                row |= measure(run(corpus_config(corpus, data, work, seed, args.base, args.peft, args.lr)), seed)
                rows.append(row)
                flagged.append({tuple(f) for f in row["flagged"]})
                found.append({(u, label) for u, label, _ in row["oracle"]})
                strong.append({(u, label) for u, label, rate in row["oracle"] if rate >= 0.7})
                print(json.dumps({k: v for k, v in row.items() if k != "run"}, ensure_ascii=False), flush=True)
            unstable = [
                (unit, sum(unit in f for f in flagged), sum(unit in s for s in strong))
                for unit in sorted(set().union(*strong))
                if not all(unit in f for f in flagged)
            ]
            rows.append(
                {
                    "corpus": corpus,
                    "base": args.base,
                    "jaccard": jaccard(flagged),
                    "oracle_jaccard": jaccard(found),
                    "strong_unstable": unstable,
                }
            )
            print(
                f"{corpus}: flagged-set Jaccard over seeds {args.seeds}: {rows[-1]['jaccard']} (the oracle's sets: "
                f"{rows[-1]['oracle_jaccard']}); units with oracle flip "
                f"≥ 0.7 in some seed not flagged in every seed (unit, seeds flagged, seeds ≥ 0.7): {unstable}",
                flush=True,
            )
    print("\n| corpus | base | seed | test acc. | texts | oracle units | flagged | recall | precision | missed ≥ 0.7 |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    fmt = lambda v: "–" if v is None else f"{v:.2f}"  # noqa: E731
    for r in rows:
        if "seed" in r:
            print(
                f"| {r['corpus']} | {r['base']} ({r['peft']}) | {r['seed']} | {r['test_accuracy']:.3f} | "
                f"{r['n_texts']} | {r['n_reference']} | {r['n_flagged']} | {fmt(r['recall'])} | "
                f"{fmt(r['precision'])} | {r['strong_missed'] or 'none'} |"
            )
        else:
            print(
                f"| {r['corpus']} | {r['base']} | Jaccard over seeds, flagged (oracle) | | | | | "
                f"{fmt(r['jaccard'])} ({fmt(r['oracle_jaccard'])}) | | |"
            )
    if args.output:
        args.output.write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    with user_errors_exit():
        main()
