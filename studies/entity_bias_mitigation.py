"""Entity bias and accuracy before and after mitigation: the same run as given, with `--entities-augment
entity-swap` and with `--entities-mask`, each analysed with entity-bias, then compared in one table and
OUTPUT_DIR/entity_bias_comparison.json. recipes/entity_bias_mitigation.py runs it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from mikiwame.framework import inert
from mikiwame.framework.analysis import AnalysisContext
from mikiwame.framework.config import RunConfig
from mikiwame.framework.entities import MaskedInputs, load_entity_lists
from mikiwame.framework.figures import with_interval
from mikiwame.framework.options import read_options
from mikiwame.framework.plugins import PluginSet, build_plugin_set
from mikiwame.framework.predict import RunPredictor
from mikiwame.framework.recipe import parse_config
from mikiwame.framework.results import RunResults
from mikiwame.framework.runner import run, user_errors_exit
from mikiwame.plugins.analyzers.entity_bias import EntityBiasOptions, measure_entity_bias
from mikiwame.plugins.tasks.entities import EntityOptions

VARIANTS = {
    "as given": {"augment": "none", "mask_entities": False},
    "--entities-augment entity-swap": {"augment": "entity-swap", "mask_entities": False},
    "--entities-mask": {"augment": "none", "mask_entities": True},
}


def main(recipe: str, description: str, defaults: RunConfig, argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parse the recipe's command line, train and analyse the three variants, write and show the comparison;
    a user error ends as every recipe's does (`user_errors_exit`)."""
    plugins = build_plugin_set()
    with user_errors_exit():
        config = parse_config(recipe, description, defaults, argv, plugins)
        analyze = list(dict.fromkeys([*config.analyze, "entity-bias"]))
        runs = {
            name: run(replace(config, analyze=analyze, options={**config.options, **options}), plugins)
            for name, options in VARIANTS.items()
        }
        comparison = compare_mitigations(runs, plugins, config.options)
    target = Path(config.output_dir) / "entity_bias_comparison.json"
    target.write_text(json.dumps(comparison, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    Console().print(comparison_table(comparison))
    Console().print(f"written: {target}")
    return comparison


def compare_mitigations(
    runs: dict[str, Path], plugins: PluginSet, options: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Accuracy and entity-swap figures of several finished runs of the same task (the first one as given, the
    others mitigated). Every run is probed on the texts the analyzer probed in the first run (its seeded
    sample of at most `--entity-bias-max-texts` evaluation texts, with `--entity-bias-k` swaps each, from
    `options`); a `--entities-mask` run gets them masked exactly as its training texts were."""
    chosen = read_options(EntityBiasOptions, options or {})
    lists = load_entity_lists(read_options(EntityOptions, options or {}).entities)
    reference = RunResults.load(next(iter(runs.values())))
    texts = [e.text for e in AnalysisContext(reference, plugins).held_out_examples(chosen.entity_bias_max_texts)]
    rows = {}
    for name, directory in runs.items():
        results = RunResults.load(directory)
        predictor: Any = RunPredictor(directory, plugins)
        saved = results.config.get("options", {})
        if saved.get("mask_entities"):
            predictor = MaskedInputs(predictor, lists)
        bias = measure_entity_bias(
            predictor, texts, lists, k=chosen.entity_bias_k, seed=int(results.config.get("seed", 0))
        )
        split = "test" if "test" in results.metrics["after"] else next(iter(results.metrics["after"]))
        rows[name] = {
            "run": str(directory),
            "augment": saved.get("augment") or "none",
            "mask_entities": bool(saved.get("mask_entities")),
            "accuracy": results.metrics["after"][split]["accuracy"],
            "accuracy_split": split,
            "swaps": bias["swaps"],
            "identity_control": bias["identity_control"],
            "non_entity_baseline": bias["non_entity_baseline"],
        }
    return {"schema_version": 1, "n_texts": len(texts), "runs": rows}


def comparison_table(comparison: dict[str, Any]) -> Table:
    table = Table(
        title=f"Entity bias and accuracy before/after mitigation ({comparison['n_texts']} evaluation texts)",
        title_justify="left",
        caption="swap figures on the first run's original texts; 95% intervals (Wilson / bootstrap)",
    )
    for column in ("run", "accuracy [95%]", "swap flip rate [95%]", "mean |Δp| [95%]", "non-entity baseline flips"):
        table.add_column(column, justify="left" if column == "run" else "right")
    for name, row in comparison["runs"].items():
        acc = row["accuracy"]
        swaps, baseline = row["swaps"], row["non_entity_baseline"]
        table.add_row(
            inert.text(name),
            with_interval(acc, "{:.3f}") + f" (n={acc['n']})",
            with_interval(swaps["flip_rate"]) + f" (n={swaps['n']})" if swaps else "–",
            with_interval(swaps["mean_abs_delta"], "{:.3f}") if swaps else "–",
            with_interval(baseline["flip_rate"]) if baseline else "–",
        )
    return table
