"""What every recipe does: build the command line (core options plus plugins' own), resolve the config, run."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .checkpoint import complete_checkpoint
from .config import RunConfig, build_parser, config_from_args, explicit_dests
from .errors import MikiwameError
from .plugins import PluginSet, build_plugin_set
from .runner import run_guarded, user_errors_exit


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
        config = _resumed(config, explicit_dests(parser, argv), plugin_dests)
    return config


def _resumed(config: RunConfig, explicit: set[str], plugin_dests: Sequence[str]) -> RunConfig:
    """`--resume CHECKPOINT` continues with the config saved beside that checkpoint. An option given with it
    that differs from that config is refused rather than silently ignored (`--output-dir` may differ: it only
    says where the resumed run is written)."""
    checkpoint, _ = complete_checkpoint(Path(config.resume))
    saved_path = checkpoint.parent.parent / "config.json"
    if not saved_path.is_file():
        raise MikiwameError(
            f"{checkpoint} is not a checkpoint of a mikiwame run (no {saved_path})",
            where="--resume",
            fix="give a folder like runs/.NAME.partial/checkpoints/step-000040",
        )
    saved = RunConfig.load(saved_path)
    given = set(saved.to_dict()) if "config" in explicit else explicit
    ours, theirs = config.to_dict(), saved.to_dict()
    conflicts = [
        f"--{dest.replace('_', '-')} {ours[dest]!r} (the checkpoint's run: {theirs[dest]!r})"
        for dest in sorted(given - {"resume", "recipe", "output_dir", "config", "options"})
        if dest in ours and ours[dest] != theirs[dest]
    ]
    conflicts += [
        f"--{dest.replace('_', '-')} {config.options.get(dest)!r} (the checkpoint's run: {saved.options.get(dest)!r})"
        for dest in sorted(given & set(plugin_dests))
        if config.options.get(dest) != saved.options.get(dest)
    ]
    if conflicts:
        raise MikiwameError(
            f"options that differ from the run being resumed: {'; '.join(conflicts)}",
            where="--resume",
            fix="resume with only --resume (and --output-dir), or start a new run without --resume",
        )
    saved.resume = config.resume
    saved.output_dir = config.output_dir
    return saved


def recipe_main(recipe: str, description: str, defaults: RunConfig, argv: Sequence[str] | None = None) -> Path:
    """A user error, in the options or in the data, ends with one message on stderr and exit status 2 (as
    argparse's own errors do), never a traceback."""
    with user_errors_exit():
        config = parse_config(recipe, description, defaults, argv)
    return run_guarded(config)
