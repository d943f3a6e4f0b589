"""The command line of recipes/compare_peft.py: the comparison's own options (methods, seeds, LR grid, threads),
checked, then the comparison (studies/peft_comparison.py) rendered (studies/peft_comparison_report.py)."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

from mikiwame.framework.config import RunConfig
from mikiwame.framework.errors import ConfigError
from mikiwame.framework.options import option
from mikiwame.framework.plugins import PluginSet, build_plugin_set
from mikiwame.framework.recipe import build_command_line, config_from_command_line
from mikiwame.framework.runner import user_errors_exit
from mikiwame.studies import peft_comparison_report as report
from mikiwame.studies.peft_comparison import DEFAULT_GRID, ComparisonPlan, compare

METHODS = "lora,ia3,prompt-tuning,adapter,bitfit,full,head-only"


@dataclass
class ComparisonOptions:
    methods: str = option(METHODS, "comma-separated PEFT method names")
    seeds: int = option(3, "seeds per method (the first also chooses the LR)")
    lr_grid: str = option(DEFAULT_GRID, "e.g. '0.3x,1x,3x;soft prompt=1e-2,3e-2;full=1e-4'")
    threads: int = option(1, "torch CPU threads per training process")


def parse(description: str, defaults: RunConfig, argv: Sequence[str] | None, plugins: PluginSet) -> ComparisonPlan:
    """The plan a command line asks for: the core's and plugins' options (the recipe's `defaults`) and the
    comparison's own, each checked."""
    command_line, extra = build_command_line(description, defaults, plugins, own=[("comparison", ComparisonOptions)])
    config = config_from_command_line(command_line, extra, argv, "compare_peft", plugins)[0]
    own = {f.name: config.options.pop(f.name) for f in fields(ComparisonOptions)}
    for name in ("seeds", "threads"):
        if own[name] < 1:
            raise ConfigError(f"--{name} must be at least 1, got {own[name]}", where=f"--{name}")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError(
            "compare_peft runs each training in its own process; launch it with one process",
            fix="accelerate launch --num_processes 1 recipes/compare_peft.py ... (or plain python)",
        )
    methods = [m.strip() for m in own["methods"].split(",") if m.strip()]
    if not methods:
        raise ConfigError("--methods names no method", fix=f"e.g. --methods {METHODS}")
    return ComparisonPlan(config, methods, own["seeds"], own["lr_grid"], own["threads"])


def main(description: str, defaults: RunConfig, argv: Sequence[str] | None = None) -> Path:
    """Parse, train every method and seed (each in its own process), render and write the comparison; a user
    error ends as every recipe's does (`user_errors_exit`)."""
    plugins = build_plugin_set()
    console = report.console()
    with user_errors_exit():
        plan = parse(description, defaults, argv, plugins)
        directory = Path(plan.base.output_dir) / f"{time.strftime('%Y%m%d-%H%M%S')}-compare_peft"
        result = compare(plan, directory, plugins, progress=console.log)
    report.render(result, report.write_files(result, directory), console)
    return directory
