"""What every recipe does: build the command line (core options plus plugins' own), resolve the config, run."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from .config import RunConfig, build_parser, config_from_args
from .errors import MikiwameError
from .plugins import PluginSet, build_plugin_set
from .runner import run_guarded


def parse_config(
    recipe: str,
    description: str,
    defaults: RunConfig,
    argv: Sequence[str] | None = None,
    plugins: PluginSet | None = None,
) -> RunConfig:
    plugins = plugins or build_plugin_set()
    parser = build_parser(description, defaults)
    core = {a.dest for a in parser._actions}
    plugins.hook.mikiwame_add_arguments(parser=parser)
    plugin_dests = [a.dest for a in parser._actions if a.dest not in core]
    config = config_from_args(parser, argv, recipe, plugin_dests)
    if config.resume:
        config = _resumed(config)
    return config


def _resumed(config: RunConfig) -> RunConfig:
    """`--resume CHECKPOINT` continues with the config saved beside that checkpoint."""
    checkpoint = Path(config.resume)
    saved = checkpoint.parent.parent / "config.json"
    if not checkpoint.is_dir() or not saved.is_file():
        raise MikiwameError(
            f"{checkpoint} is not a checkpoint of a mikiwame run (no {saved})",
            where="--resume",
            fix="give a folder like runs/.NAME.partial/checkpoints/step-000040",
        )
    resumed = RunConfig.load(saved)
    resumed.resume = str(checkpoint)
    return resumed


def recipe_main(recipe: str, description: str, defaults: RunConfig, argv: Sequence[str] | None = None) -> Path:
    """A user error, in the options or in the data, ends with one message on stderr and exit status 2 (as
    argparse's own errors do), never a traceback."""
    try:
        config = parse_config(recipe, description, defaults, argv)
    except MikiwameError as err:
        print(f"mikiwame: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    return run_guarded(config)
