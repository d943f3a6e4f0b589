"""What every recipe does: build the command line (core options plus plugins' own), resolve the config, run."""

from __future__ import annotations

import argparse
import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .checkpoint import complete_checkpoint
from .config import RunConfig
from .errors import MikiwameError
from .help import HELP_FLAGS, CompactHelpFormatter, SelectionHelp
from .options import CommandLine, add_options, read_options
from .plugins import PluginSet, build_plugin_set
from .runner import run_guarded, user_errors_exit


def build_command_line(
    description: str, defaults: RunConfig, plugins: PluginSet, own: Sequence[tuple[str, type]] = ()
) -> tuple[CommandLine, list[str]]:
    """The one command line of every recipe: `--config`, the core's options (RunConfig's fields, the recipe's
    defaults), the plugins' and the recipe's `own` option groups. Returns it with the names stored in
    `config.options` (all but the core's)."""
    parser = argparse.ArgumentParser(
        description=description, usage="%(prog)s [options]", add_help=False, formatter_class=CompactHelpFormatter
    )
    command_line = CommandLine(parser)
    parser.add_argument(
        *HELP_FLAGS,
        action=SelectionHelp,
        command_line=command_line,
        plugins=plugins,
        values_of=functools.partial(_selecting_values, command_line, plugins),
    )
    command_line.parser.add_argument("--config", type=Path, help="a run's config.json to start from; typed options win")
    add_options(command_line.parser, RunConfig, "run", defaults.to_dict())
    extra = plugins.add_options(command_line, defaults.options)
    for title, cls in own:
        extra += command_line.dests_added_by(functools.partial(add_options, cls=cls, title=title))
    return command_line, extra


def _selecting_values(command_line: CommandLine, plugins: PluginSet, typed: Mapping[str, Any]) -> dict[str, Any]:
    """The core values a command line gives, `typed` over `--config`'s over the recipe's defaults: what
    `--help` reads the selected plugins from."""
    path = typed.get("config")
    saved = RunConfig.load(path, plugins.option_types()).to_dict() if path else {}
    return {**command_line.defaults, **saved, **typed}


def config_from_command_line(
    command_line: CommandLine, extra: Sequence[str], argv: Sequence[str] | None, recipe: str, plugins: PluginSet
) -> tuple[RunConfig, set[str]]:
    """Defaults < saved config (--config) < options typed on the command line. Returns the config and the
    names typed."""
    parsed = command_line.parse(argv)
    path = parsed.values.pop("config")
    base = RunConfig.load(path, plugins.option_types()).to_dict() if path else None
    values: dict = {"options": {}} if base is None else {**base, "options": dict(base["options"])}
    for name, value in parsed.values.items():
        if name in extra:
            if base is None or name in parsed.explicit or name not in values["options"]:
                values["options"][name] = value
        elif base is None or name in parsed.explicit:
            values[name] = value
    values["recipe"] = recipe
    config = RunConfig(**values)
    config.validate()
    for _, cls in plugins.option_classes():
        read_options(cls, config.options)
    return config, parsed.explicit


def parse_config(
    recipe: str,
    description: str,
    defaults: RunConfig,
    argv: Sequence[str] | None = None,
    plugins: PluginSet | None = None,
) -> RunConfig:
    plugins = plugins or build_plugin_set()
    command_line, extra = build_command_line(description, defaults, plugins)
    config, explicit = config_from_command_line(command_line, extra, argv, recipe, plugins)
    if config.resume:
        config = _resumed(config, explicit, extra, plugins)
    return config


def _resumed(config: RunConfig, explicit: set[str], plugin_dests: Sequence[str], plugins: PluginSet) -> RunConfig:
    """`--resume CHECKPOINT` continues with the config saved beside that checkpoint. An option given with it
    that differs from that config is refused rather than silently ignored (`--output-dir` may differ: it only
    says where the resumed run is written)."""
    assert config.resume is not None  # called only for a config that resumes
    checkpoint, _ = complete_checkpoint(Path(config.resume))
    saved_path = checkpoint.parent.parent / "config.json"
    if not saved_path.is_file():
        raise MikiwameError(
            f"{checkpoint} is not a checkpoint of a mikiwame run (no {saved_path})",
            where="--resume",
            fix="give a folder like runs/.NAME.partial/checkpoints/step-000040",
        )
    saved = RunConfig.load(saved_path, plugins.option_types())
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
