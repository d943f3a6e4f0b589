"""Entity bias and accuracy before and after mitigation: the same run as given, with --augment entity-swap and
with --mask-entities, each analysed with entity-bias, then compared in one table (and comparison.json).

    python recipes/entity_bias_mitigation.py --model tiny --epochs 8
    python recipes/entity_bias_mitigation.py --data my_headlines.tsv --entities my_entities.tsv
"""

import json
from dataclasses import replace
from pathlib import Path

from rich.console import Console

from mikiwame.framework.config import RunConfig
from mikiwame.framework.errors import MikiwameError
from mikiwame.framework.plugins import build_plugin_set
from mikiwame.framework.recipe import parse_config
from mikiwame.framework.runner import run_guarded
from mikiwame.plugins.analyzers.entity_bias import compare_mitigations, comparison_table

DEFAULTS = RunConfig(task="headlines", model="tiny", peft="auto", epochs=8, batch_size=16, patience=3)
VARIANTS = {
    "as given": {"augment": "none", "mask_entities": False},
    "--augment entity-swap": {"augment": "entity-swap", "mask_entities": False},
    "--mask-entities": {"augment": "none", "mask_entities": True},
}


def main(argv=None):
    plugins = build_plugin_set()
    try:
        config = parse_config("entity_bias_mitigation", __doc__.splitlines()[0], DEFAULTS, argv, plugins)
    except MikiwameError as err:
        raise SystemExit(f"mikiwame: error: {err}") from None
    analyze = list(dict.fromkeys([*config.analyze, "entity-bias"]))
    runs = {
        name: run_guarded(replace(config, analyze=analyze, options={**config.options, **options}))
        for name, options in VARIANTS.items()
    }
    comparison = compare_mitigations(runs, plugins, config.options)
    target = Path(config.output_dir) / "entity_bias_comparison.json"
    target.write_text(json.dumps(comparison, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    Console().print(comparison_table(comparison))
    Console().print(f"written: {target}")
    return comparison


if __name__ == "__main__":
    main()
