"""The shortcut countermeasures judged against their oracle: how much of the accuracy of a model that never saw
the shortcut each cure recovers, on a test split where the shortcut misleads.

    python benchmarks/countermeasure_recovery.py planted                  # 6 shapes x 3 seeds, tiny from scratch
    python benchmarks/countermeasure_recovery.py planted --shapes star-run --seeds 1 --cures shortcut-augment
    python benchmarks/countermeasure_recovery.py livedoor --tags 2        # real tags of livedoor titles
    python benchmarks/countermeasure_recovery.py table RUN/countermeasures/summary.json   # any summary as a table
    python benchmarks/countermeasure_recovery.py table A.json B.json   # planted --output files as one table

`planted`: each shape of benchmarks/planted_shapes.py is planted into one label's training and validation texts
of the bundled headlines at 90% purity, the test split **anti-correlated** (the tag in half of the other labels'
test texts, none of its own). Per shape: a tiny run (the recall benchmark's headline recipe) with the real
`shortcuts` analyzer, then `mikiwame countermeasures` (every shortcut cure, one run per seed, paired; the analysed
run is seed 1's baseline) for whatever unit the analyzer flagged, and the **oracle** (the named peer): the same
config trained on the same texts with the exact planted tag cut out of the training and validation texts
(`delete_tag`, not the cures' code). Printed per cure: accuracy on the anti-correlated test split, **recovery**
= that accuracy / the oracle's (goal: the best cure ≥ 0.90), the shift-set accuracy before → after (the tool's
own shift set), and the in-distribution cost: accuracy on the same test texts planted like training (90% of the
label's texts tagged), paired over texts and seeds.

`livedoor`: a tiny run on livedoor titles (../shared/data or --data / MIKIWAME_SHARED_DATA, read in place), its
`shortcuts` analysis, and every shortcut cure on the first --tags flagged units: accuracy and each tag's deletion
flip rate, paired. The over-fitting table is `mikiwame countermeasures` itself (docs/countermeasures.md has the
commands); `table` prints any summary.json, or the --output files of `planted` runs (shapes measured in parallel
processes), in the doc's form.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from corpora import REPO, shared_data
from planted_shapes import SHAPES, Shape, delete_tag, plant

from mikiwame.framework import paired
from mikiwame.framework.config import RunConfig
from mikiwame.framework.countermeasures import (
    FOLDER,
    TestSplit,
    command,
    finished_run,
    plan,
    quiet,
    run_countermeasures,
    write_summary,
)
from mikiwame.framework.plugins import PluginSet, build_plugin_set
from mikiwame.framework.predict import RunPredictor
from mikiwame.framework.results import RunResults
from mikiwame.framework.runner import run
from mikiwame.framework.task import Example

SHORTCUT_CURES = ["shortcut-delete", "shortcut-augment", "shortcut-neutral", "shortcut-consistency"]
# one of each kind the issue names: bracket tag, symbol run, emoji, half-width, number, separator
DEFAULT_SHAPES = [
    "tortoise-shell",
    "star-run",
    "emoji-fire",
    "halfwidth-katakana",
    "volume-number",
    "source-bar",
]
LABEL = "sports"


def write_tsv(examples: list[Example], path: Path) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, delimiter="\t")
        writer.writerow(["text", "label", "split"])
        writer.writerows((e.text, e.label, e.split) for e in examples)
    return path


def headline_config(data: Path, output_dir: Path, seed: int, epochs: int, analyze: list[str]) -> RunConfig:
    """The recall benchmark's headline recipe (tiny model from scratch, all 468 training headlines, 8 epochs,
    early stopping on the validation split) on a planted TSV of text, label and split."""
    return RunConfig.of(
        recipe="countermeasure_recovery",
        task="csv",
        data=str(data),
        options={"split_column": "split"},
        model="tiny",
        lr=1e-3,
        batch_size=8,
        tiny_vocab_size=2000,
        max_length=48,
        epochs=epochs,
        patience=3,
        seed=seed,
        output_dir=str(output_dir),
        analyze=analyze,
    )


def trained(config: RunConfig, plugins: PluginSet) -> Path:
    """The finished run in the config's folder, trained (without reporters) only when there is none: a
    benchmark cut short resumes where it stopped."""
    return finished_run(Path(config.output_dir)) or run(config, quiet(plugins))


def seed_baseline(run_dir: Path) -> None:
    """The analysed run is the first seed's baseline (the same config and seed): copied into the place
    `mikiwame countermeasures` looks for it, so it is not trained twice."""
    config = RunResults.load(run_dir).config
    target = run_dir / FOLDER / "baseline" / f"seed-{config['seed']}" / run_dir.name
    if not target.parent.exists():
        shutil.copytree(run_dir, target, ignore=shutil.ignore_patterns(FOLDER))


def correct_on(runs: list[Path], texts: list[str], gold: list[str], plugins: PluginSet) -> np.ndarray:
    """(runs, texts): whether each run's saved model labels each text right."""
    rows = []
    for d in runs:
        predictor = RunPredictor(d, plugins)
        predicted = predictor.probabilities(texts).argmax(-1).numpy()
        rows.append(np.asarray([predictor.labels[p] == g for p, g in zip(predicted, gold, strict=True)]))
    return np.stack(rows)


def summary_runs(summary_path: Path, row: dict[str, Any] | None) -> list[Path]:
    root = summary_path.parent
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    return [root / r for r in (row["runs"] if row else summary["baseline"]["runs"])]


def recover(
    shape: Shape,
    work: Path,
    seeds: int,
    cures: list[str],
    epochs: int = 8,
    purity: float = 0.9,
    plant_seed: int = 1,
    plugins: PluginSet | None = None,
) -> dict[str, Any]:
    """One shape: planted, analysed, cured (`seeds` paired runs per cure, seeds plant_seed, plant_seed+1, ...)
    and judged against the oracle. Returns the shape's figures and one row per (flagged unit, cure)."""
    plugins = plugins or build_plugin_set()
    started = time.perf_counter()
    loaded = plugins.tasks.get("headlines").load(RunConfig.of(task="headlines", seed=plant_seed))
    shapes = {LABEL: shape}
    anti = plant(loaded.examples, shapes, purity=purity, test="anti", seed=plant_seed)
    iid_test = [
        e for e in plant(loaded.examples, shapes, purity=purity, test="iid", seed=plant_seed) if e.split == "test"
    ]
    clean = [Example(e.id, delete_tag(e.text, shape) if e.split != "test" else e.text, e.label, e.split) for e in anti]
    work.mkdir(parents=True, exist_ok=True)
    planted_tsv, oracle_tsv = write_tsv(anti, work / "planted.tsv"), write_tsv(clean, work / "oracle.tsv")

    analysed = trained(headline_config(planted_tsv, work / "run", plant_seed, epochs, ["shortcuts"]), plugins)
    flagged = [(f["unit"], f["label"]) for f in RunResults.load(analysed).analyses["shortcuts"].get("flagged", [])]
    oracle = [
        trained(headline_config(oracle_tsv, work / "oracle" / f"seed-{s}", s, epochs, []), plugins)
        for s in range(plant_seed, plant_seed + seeds)
    ]
    oracle_accuracy = float(TestSplit.of(oracle).correct.mean())
    iid_texts, iid_gold = [e.text for e in iid_test], [e.label for e in iid_test]
    result: dict[str, Any] = {
        "shape": shape.name,
        "kind": shape.kind,
        "tag": shape.tag,
        "unit": shape.unit,
        "label": LABEL,
        "flagged": flagged,
        "oracle_accuracy": oracle_accuracy,
        "oracle_in_distribution": float(correct_on(oracle, iid_texts, iid_gold, plugins).mean()),
        "rows": [],
    }
    if flagged:
        seed_baseline(analysed)
        summary_path = command(analysed, plugins, cures, seeds, False)
        assert summary_path is not None
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        base_iid = correct_on(summary_runs(summary_path, None), iid_texts, iid_gold, plugins)
        result["baseline_accuracy"] = summary["rows"][0]["accuracy"]["baseline"] if summary["rows"] else None
        for row in summary["rows"]:
            after_iid = correct_on(summary_runs(summary_path, row), iid_texts, iid_gold, plugins)
            cost = paired.paired_difference(paired.accuracy_of(base_iid), paired.accuracy_of(after_iid), len(iid_gold))
            result["rows"].append(
                {
                    "unit": row["addresses"]["unit"],
                    "flagged_label": row["addresses"]["label"],
                    "countermeasure": row["countermeasure"],
                    "accuracy": row["accuracy"],
                    "recovery": row["accuracy"]["after"] / oracle_accuracy,
                    "shift_set": row["target"] if row["target"]["metric"] == "shift-set accuracy" else None,
                    "in_distribution": cost,
                    "verdict": row["verdict"],
                }
            )
    else:
        result["baseline_accuracy"] = float(TestSplit.of([analysed]).correct.mean())
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def _interval(figure: dict[str, Any]) -> str:
    low, high = figure["interval"]
    return f"{figure['delta']:+.3f} [{low:+.3f}, {high:+.3f}]"


def _figure(figure: dict[str, Any]) -> str:
    return f"{figure['baseline']:.3f} → {figure['after']:.3f}, {_interval(figure)}"


def planted_table(results: list[dict[str, Any]]) -> None:
    print(
        "\n| shape (tag) | flagged unit | countermeasure | anti-correlated test accuracy: baseline → after | "
        "oracle | recovery | shift-set accuracy before → after, Δ [95%] | in-distribution accuracy: before → after, "
        "Δ [95%] (oracle) | verdict |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        name = f"{r['shape']} (`{r['tag'].strip()}`)"
        if not r["rows"]:
            print(
                f"| {name} | none flagged | – | {r['baseline_accuracy']:.3f} | {r['oracle_accuracy']:.3f} | "
                f"{r['baseline_accuracy'] / r['oracle_accuracy']:.2f} (baseline) | – | – | – |"
            )
        for row in r["rows"]:
            acc, shift = row["accuracy"], row["shift_set"]
            shifted = f"{shift['baseline']:.3f} → {shift['after']:.3f}, {_interval(shift)}" if shift else "–"
            print(
                f"| {name} | `{row['unit']}` ({row['flagged_label']}) | {row['countermeasure']} | "
                f"{acc['baseline']:.3f} → {acc['after']:.3f} | {r['oracle_accuracy']:.3f} | {row['recovery']:.2f} | "
                f"{shifted} | {_figure(row['in_distribution'])} ({r['oracle_in_distribution']:.3f}) | "
                f"{row['verdict']} |"
            )
    best = [max((row["recovery"] for row in r["rows"]), default=None) for r in results]
    print(
        "\nbest cure's recovery per shape: "
        + ", ".join(
            f"{r['shape']} {b:.2f}" if b is not None else f"{r['shape']} –" for r, b in zip(results, best, strict=True)
        )
    )


def summary_table(summary: dict[str, Any]) -> None:
    """Any summary.json as the doc's table: accuracy Δ, the target figure and the further ones, verdict."""
    print(
        "\n| countermeasure | finding | test accuracy: before → after, Δ [95%] | target: before → after, Δ [95%] | "
        "also | verdict |"
    )
    print("|---|---|---|---|---|---|")
    for row in summary["rows"]:
        address = row["addresses"]
        finding = f"`{address['unit']}` ({address['label']})" if "unit" in address else address["finding"]
        target = row["target"]
        also = "; ".join(f"{a['metric']} {_figure(a)}" for a in row.get("also", []))
        print(
            f"| {row['countermeasure']} | {finding} | {_figure(row['accuracy'])} | {target['metric']} "
            f"{_figure(target)} | {also} | {row['verdict']} |"
        )


def livedoor(data: Path, work: Path, seeds: int, tags: int, plugins: PluginSet) -> Path:
    """A tiny run on livedoor titles (the recall benchmark's corpus recipe: 1,000 training titles, 8 epochs),
    its shortcuts analysis, and every shortcut cure on its first `tags` flagged units."""
    config = RunConfig.of(
        recipe="countermeasure_recovery",
        task="livedoor",
        data=str(data / "livedoor" / "ldcc-20140209.tar.gz"),
        model="tiny",
        train_size=1000,
        epochs=8,
        patience=3,
        seed=1,
        output_dir=str(work),
        analyze=["shortcuts"],
    )
    analysed = trained(config, plugins)
    seed_baseline(analysed)
    planned = plan(analysed, plugins, SHORTCUT_CURES, seeds)
    units = list(dict.fromkeys(t.target.detail["unit"] for t in planned.treatments))[:tags]
    planned.treatments = [t for t in planned.treatments if t.target.detail["unit"] in units]
    return write_summary(run_countermeasures(planned, plugins), planned.root)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", choices=("planted", "livedoor", "table"))
    p.add_argument("files", nargs="*", type=Path, help="table: a summary.json, or planted --output files")
    p.add_argument("--shapes", nargs="+", default=DEFAULT_SHAPES, choices=[s.name for s in SHAPES])
    p.add_argument("--seeds", type=int, default=3, help="paired runs per cure (seeds 1, 2, ...)")
    p.add_argument("--cures", nargs="+", default=SHORTCUT_CURES)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--tags", type=int, default=2, help="livedoor: how many flagged units to cure")
    p.add_argument("--data", help="the shared corpora folder (default ../shared/data)")
    p.add_argument(
        "--work",
        type=Path,
        help="the runs' folder (default build/countermeasure_recovery); finished runs there are reused",
    )
    p.add_argument("--output", type=Path, help="write the figures as JSON here")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.mode == "table":
        loaded = [json.loads(f.read_text(encoding="utf-8")) for f in args.files]
        planted = [r for x in loaded if isinstance(x, list) for r in x]
        if planted:
            planted_table(planted)
        for summary in (x for x in loaded if isinstance(x, dict)):
            summary_table(summary)
        return
    work = args.work or REPO / "build" / "countermeasure_recovery"
    plugins = build_plugin_set()
    if args.mode == "livedoor":
        path = livedoor(shared_data(args.data), work / "livedoor", args.seeds, args.tags, plugins)
        print(f"summary: {path}")
        summary_table(json.loads(path.read_text(encoding="utf-8")))
        return
    results = []
    for name in args.shapes:
        shape = next(s for s in SHAPES if s.name == name)
        results.append(recover(shape, work / name, args.seeds, args.cures, args.epochs, plugins=plugins))
        print(json.dumps(results[-1], ensure_ascii=False), flush=True)
        if args.output:
            args.output.write_text(json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8")
    planted_table(results)


if __name__ == "__main__":
    main()
