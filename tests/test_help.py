"""`--help` fits on a screen: the core's options and those of the plugins the command line selects, one line
saying how to see the rest; every option is still accepted, shown or not. `mikiwame plugins NAME` shows the rest."""

from __future__ import annotations

import json
import runpy

import pytest

from mikiwame.framework.cli import main as mikiwame_main

from .conftest import RECIPE


@pytest.fixture(scope="module")
def recipe_main():
    return runpy.run_path(str(RECIPE))["main"]


def help_of(recipe_main, monkeypatch, capsys, *args: str) -> str:
    monkeypatch.setenv("COLUMNS", "80")
    with pytest.raises(SystemExit) as ended:
        recipe_main([*args, "--help"])
    assert ended.value.code == 0
    return capsys.readouterr().out


def test_the_recipes_help_on_its_defaults_fits_on_a_screen(recipe_main, monkeypatch, capsys):
    shown = help_of(recipe_main, monkeypatch, capsys)
    lines = shown.splitlines()
    assert len(lines) <= 60, shown
    assert "--epochs" in shown and "--analyze" in shown  # the core's options
    assert "--tiny-layers" not in shown and "--icl-k" not in shown  # unselected plugins'
    assert "mikiwame plugins NAME" in lines[-1]


def test_help_shows_the_options_of_the_selected_task_model_method_and_analyzers(recipe_main, monkeypatch, capsys):
    csv = help_of(recipe_main, monkeypatch, capsys, "--task", "csv")
    assert "--csv-text-column" in csv and "--tiny-layers" not in csv
    chosen = help_of(
        recipe_main, monkeypatch, capsys, "--model", "tiny", "--peft", "dora", "--analyze", "shortcuts,curves"
    )
    for flag in ("--tiny-layers", "--lora-r", "--shortcuts-method", "--curves-compare", "--word-vectors"):
        assert flag in chosen, flag  # the model's, the method's (DoRA reads LoRA's), the analyzers', SHOWN_WITH
    assert "--shortcut-cures-units" in chosen  # a countermeasure of a selected analyzer
    for flag in ("--csv-text-column", "--icl-k", "--entity-bias-k", "--adapter-size"):
        assert flag not in chosen, flag


def test_a_typed_plugin_option_or_a_saved_config_selects_too(recipe_main, monkeypatch, capsys, tmp_path):
    assert "--icl-lm" in help_of(recipe_main, monkeypatch, capsys, "--icl-k", "2")
    saved = tmp_path / "config.json"
    saved.write_text(json.dumps({"task": "csv", "options": {}}), encoding="utf-8")
    assert "--csv-text-column" in help_of(recipe_main, monkeypatch, capsys, "--config", str(saved))


def test_options_hidden_from_help_are_still_accepted(tmp_path):
    from mikiwame.framework.config import RunConfig
    from mikiwame.framework.recipe import parse_config

    config = parse_config("test", "test", RunConfig(), ["--icl-k", "2", "--adapter-size", "8"])
    assert config.options["icl_k"] == 2 and config.options["adapter_size"] == 8


def test_mikiwame_plugins_name_shows_that_plugins_options(capsys):
    assert mikiwame_main(["plugins", "token-stats"]) == 0  # a thing's name finds its plugin
    shown = capsys.readouterr().out
    assert "plugin token_stats registers analyzers: token-stats" in shown and "--token-stats-alpha" in shown
    assert "--lora-r" not in shown
    with pytest.raises(SystemExit) as ended:
        mikiwame_main(["plugins", "lorra"])
    assert ended.value.code == 2 and "did you mean 'lora'" in capsys.readouterr().err
