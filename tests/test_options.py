"""Plugins' options: typed dataclasses and free-form argparse options of every action kind reach the config of
a recipe, are saved with the run, and survive `--config` re-runs, where only what was typed overrides the file;
configs written before plugins declared their options still load."""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import dataclass

import pytest

from mikiwame.framework import hookimpl
from mikiwame.framework.config import RunConfig
from mikiwame.framework.errors import ConfigError
from mikiwame.framework.options import option, read_options
from mikiwame.framework.plugins import build_plugin_set
from mikiwame.framework.predict import RunPredictor
from mikiwame.framework.recipe import parse_config
from mikiwame.framework.runner import run

from .conftest import tiny_config


@dataclass
class ProbeOptions:
    probe_size: int = option(3, "a whole number")
    probe_rate: float | None = option(None, "a number or nothing")
    probe_names: list[str] = option(["a", "b"], "comma-separated names")
    probe_mode: str = option("fast", "one of two", choices=("fast", "slow"))
    probe_loud: bool = option(False, "a switch")
    probe_colour: bool = option(True, "on unless --no-probe-colour")

    def validate(self) -> None:
        if self.probe_size < 1:
            raise ConfigError(f"--probe-size must be at least 1, got {self.probe_size}")


class ProbePlugin:
    @hookimpl
    def mikiwame_options(self):
        return ProbeOptions

    @hookimpl
    def mikiwame_add_arguments(self, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("probe, free-form")
        group.add_argument("--keep", action="store_false", dest="probe_keep")
        group.add_argument("-v", "--verbose", action="count", default=0, dest="probe_verbose")
        group.add_argument("--fixed", action="store_const", const=7, default=1, dest="probe_const")
        group.add_argument("--tag", action="append", dest="probe_tags")
        group.add_argument("--mark", action="append_const", const="m", dest="probe_marks")
        group.add_argument("--colourful", action=argparse.BooleanOptionalAction, default=True, dest="probe_bool")
        group.add_argument("--probe-name", default="x", dest="probe_name")


def _parse(argv, defaults=None):
    plugins = build_plugin_set(extra=[("probe", ProbePlugin())])
    return parse_config("test", "test", defaults or RunConfig(), argv, plugins)


FREE_FORM_DEFAULTS = {
    "probe_keep": True,
    "probe_verbose": 0,
    "probe_const": 1,
    "probe_tags": None,
    "probe_marks": None,
    "probe_bool": True,
    "probe_name": "x",
}


def test_every_option_kind_has_its_default_when_not_typed():
    options = _parse([]).options
    assert {k: options[k] for k in FREE_FORM_DEFAULTS} == FREE_FORM_DEFAULTS
    assert read_options(ProbeOptions, options) == ProbeOptions()


def test_every_option_kind_is_parsed_when_typed():
    argv = [
        *("--probe-size", "5", "--probe-rate", "0.5", "--probe-names", "x, y", "--probe-mode", "slow"),
        *("--probe-loud", "--no-probe-colour", "--keep", "-vv", "--fixed", "--tag", "t1", "--tag", "t2"),
        *("--mark", "--mark", "--no-colourful", "--probe-name", "z", "--epochs", "3"),
    ]
    config = _parse(argv)
    assert read_options(ProbeOptions, config.options) == ProbeOptions(5, 0.5, ["x", "y"], "slow", True, False)
    assert {k: config.options[k] for k in FREE_FORM_DEFAULTS} == {
        "probe_keep": False,
        "probe_verbose": 2,
        "probe_const": 7,
        "probe_tags": ["t1", "t2"],
        "probe_marks": ["m", "m"],
        "probe_bool": False,
        "probe_name": "z",
    }
    assert config.epochs == 3


def test_a_config_rerun_keeps_the_file_and_takes_only_what_was_typed(tmp_path):
    first = _parse(["--probe-size", "9", "--probe-loud", "-vvv", "--tag", "t", "--epochs", "3", "--seed", "7"])
    path = tmp_path / "config.json"
    first.save(path)
    again = _parse(["--config", str(path)], defaults=RunConfig(epochs=11, seed=1))
    assert again.options == first.options and (again.epochs, again.seed) == (3, 7)
    # typed values win, even when they equal the default (a sentinel tells typed from defaulted)
    changed = _parse(["--config", str(path), "--epochs", "5", "--probe-size", "3", "--verbose"])
    assert changed.epochs == 5 and changed.seed == 7
    assert changed.options["probe_size"] == 3 and changed.options["probe_verbose"] == 1
    assert changed.options["probe_loud"] is True and changed.options["probe_tags"] == ["t"]


def test_a_plugin_option_of_the_wrong_type_in_a_config_is_named(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"epochs": 2, "options": {"probe_size": "many"}}), encoding="utf-8")
    with pytest.raises(ConfigError, match="'probe_size' is 'many', but must be a whole number"):
        _parse(["--config", str(path)])


def test_a_plugin_options_validate_runs_on_every_parse():
    with pytest.raises(ConfigError, match="--probe-size must be at least 1"):
        _parse(["--probe-size", "0"])


def test_options_reach_a_run_and_its_saved_config(tmp_path):
    plugins = build_plugin_set(extra=[("probe", ProbePlugin())])
    config = parse_config("test", "test", tiny_config(tmp_path, epochs=1), ["--probe-mode", "slow", "-v"], plugins)
    done = run(config, plugins)
    saved = json.loads((done / "config.json").read_text(encoding="utf-8"))
    assert saved["options"]["probe_mode"] == "slow" and saved["options"]["probe_verbose"] == 1
    assert saved["options"]["tiny_hidden"] == 32


def test_a_run_saved_before_plugins_declared_options_still_loads(finished_run, tmp_path):
    """Configs of earlier versions kept the tiny model's and LoRA's options at the top level."""
    path = finished_run / "config.json"
    values = json.loads(path.read_text(encoding="utf-8"))
    old = {**{k: v for k, v in values.items() if k != "options"}, "tiny_layers": 2, "tiny_hidden": 32, "lora_r": 8}
    copy = tmp_path / "old"
    shutil.copytree(finished_run, copy)
    (copy / "config.json").write_text(json.dumps(old), encoding="utf-8")
    plugins = build_plugin_set()
    loaded = RunConfig.load(copy / "config.json", plugins.option_types())
    assert loaded.options["tiny_hidden"] == 32 and loaded.options["lora_r"] == 8
    assert RunPredictor(copy, plugins).predict(["株価が上がった"])[0].label
