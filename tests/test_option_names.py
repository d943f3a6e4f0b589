"""One naming rule for plugins' options: each starts with its plugin's name or the name of a thing the plugin
registers (`--csv-encoding`, `--lora-r`, `--oversample`), so two plugins never fight over a name. Options
renamed to follow it keep their old names as hidden aliases, and saved configs keep their keys."""

from __future__ import annotations

import argparse
import json

from mikiwame.framework.config import RunConfig
from mikiwame.framework.plugins import build_plugin_set
from mikiwame.framework.recipe import build_command_line, parse_config


def prefixes(plugin: str, registered: dict[str, list[str]]) -> set[str]:
    return {plugin.replace("_", "-"), *(name for names in registered.values() for name in names)}


def follows_the_rule(flag: str, allowed: set[str]) -> bool:
    name = flag.removeprefix("--").removeprefix("no-")
    return any(name == prefix or name.startswith(prefix + "-") for prefix in allowed)


def test_every_plugin_option_starts_with_its_plugins_name():
    plugins = build_plugin_set()
    command_line, _ = build_command_line("test", RunConfig(), plugins)
    registered = plugins.registered_by()
    shown = [
        (command_line.owners[action.dest], flag)
        for action in command_line.argparse_parser._actions
        if action.dest in command_line.owners and action.help is not argparse.SUPPRESS
        for flag in action.option_strings
    ]
    assert len(shown) > 40  # every built-in plugin's options were seen
    broken = [
        f"{plugin}: {flag}"
        for plugin, flag in shown
        if not follows_the_rule(flag, prefixes(plugin, registered.get(plugin, {})))
    ]
    assert broken == []


def test_the_rule_catches_an_option_without_its_plugins_name():
    assert not follows_the_rule("--encoding", prefixes("csv", {"tasks": ["csv"]}))
    assert follows_the_rule("--csv-encoding", prefixes("csv", {"tasks": ["csv"]}))
    assert follows_the_rule("--no-token-stats-x", prefixes("token_stats", {"analyzers": ["token-stats"]}))


def test_an_old_option_name_still_works_hidden_with_a_note(capsys):
    old = parse_config("test", "test", RunConfig(), ["--encoding", "cp932", "--mask-entities", "--compare", "a", "b"])
    renamed = ["--csv-encoding", "cp932", "--entities-mask", "--curves-compare", "a", "b"]
    new = parse_config("test", "test", RunConfig(), renamed)
    assert old.options == new.options
    assert old.options["encoding"] == "cp932" and old.options["mask_entities"] and old.options["compare"] == ["a", "b"]
    assert "note: --encoding is now --csv-encoding" in capsys.readouterr().err
    command_line, _ = build_command_line("test", RunConfig(), build_plugin_set())
    help_text = command_line.argparse_parser.format_help()
    assert "--csv-encoding" in help_text and "--encoding " not in help_text


def test_a_config_saved_before_the_renames_reads_the_same(tmp_path):
    saved = tmp_path / "config.json"
    saved.write_text(json.dumps({"task": "csv", "options": {"encoding": "cp932", "label_names": "b,a"}}), "utf-8")
    config = parse_config("test", "test", RunConfig(), ["--config", str(saved)])
    assert config.options["encoding"] == "cp932" and config.options["label_names"] == "b,a"
