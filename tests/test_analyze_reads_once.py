"""`mikiwame analyze` builds the plugin set once, finds the finished run once and reads its config.json once
(the typed config is made from the same bytes the results hold), and still reports the new analysis."""

from __future__ import annotations

import os
from pathlib import Path

from mikiwame.framework import cli, predict, results


def test_analyze_reads_the_run_and_builds_the_plugins_once(finished_run, monkeypatch, capsys):
    counts = {"plugin sets": 0, "finished checks": 0, "config reads": 0}

    def counting(key, function):
        def counted(*args, **kwargs):
            counts[key] += 1
            return function(*args, **kwargs)

        return counted

    real_open = os.open

    def open_counting_configs(path, *args, **kwargs):
        # the run's own config.json (model/config.json and the tokenizer's are the model's, read by its loader)
        counts["config reads"] += os.fspath(path).endswith("config.json") and Path(path).parent.name != "model"
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(cli, "build_plugin_set", counting("plugin sets", cli.build_plugin_set))
    for module in (results, predict):
        monkeypatch.setattr(module, "require_finished", counting("finished checks", module.require_finished))
    monkeypatch.setattr(os, "open", open_counting_configs)
    assert cli.main(["analyze", str(finished_run), "errors"]) == 0
    assert counts == {"plugin sets": 1, "finished checks": 1, "config reads": 1}
    assert "errors" in capsys.readouterr().out.lower()
