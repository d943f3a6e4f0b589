"""The PEFT comparison: grids, paired tests, rendering from saved JSON, and (slow) one tiny end-to-end
comparison through the recipe, each training in its own process."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from mikiwame.framework.errors import ConfigError
from mikiwame.framework.plugins import build_plugin_set
from mikiwame.studies import peft_comparison_report as report
from mikiwame.studies.paired import compare_paired, mcnemar_exact
from mikiwame.studies.peft_comparison import learning_rates, parse_grid

from .analyzers.conftest import assert_findings_rules, saved_findings


def test_grid_multiplies_defaults_and_lets_families_and_methods_override():
    methods = build_plugin_set().peft_methods
    grids = parse_grid("1x,3x;soft prompt=1e-2,1e-1;full=1e-4")
    lora = methods.get("lora")
    assert learning_rates(grids, lora, False) == pytest.approx([lora.default_lr(False), 3 * lora.default_lr(False)])
    assert learning_rates(grids, methods.get("prompt-tuning"), True) == [1e-2, 1e-1]
    assert learning_rates(grids, methods.get("full"), True) == [1e-4]


@pytest.mark.parametrize("spec", ["1x,fast", "1x;=2e-3", "1x;3e-3", "0x", "-1e-3"])
def test_grid_rejects_what_it_cannot_read(spec):
    with pytest.raises(ConfigError):
        parse_grid(spec)


def test_mcnemar_counts_discordant_pairs_only():
    a = np.array([1, 1, 1, 1, 1, 1, 1, 0, 1, 1], dtype=bool)
    b = np.array([0, 0, 0, 0, 0, 0, 0, 0, 1, 1], dtype=bool)
    only_a, only_b, p = mcnemar_exact(a, b)
    assert (only_a, only_b) == (7, 0)
    assert p == pytest.approx(2 * 0.5**7)
    assert mcnemar_exact(a, a)[2] == 1.0


def test_paired_interval_excludes_zero_only_for_a_real_difference():
    rng = np.random.default_rng(0)
    b = rng.random((3, 200)) < 0.6
    better = b | (rng.random((3, 200)) < 0.5)
    real = compare_paired(better, b)
    assert real.low > 0 and real.mcnemar_p < 0.01
    same = compare_paired(b, b[::-1])  # same accuracy level, different seeds' noise
    assert same.low <= 0 <= same.high


def _row(method: str, accuracy: float) -> dict:
    stat = {"mean": accuracy, "std": 0.01, "n": 2}
    comparison = {"difference": 0.1, "low": 0.05, "high": 0.15, "n": 10, "only_a": 3, "only_b": 0}
    return {
        "method": method,
        "family": "baseline",
        "lr": 1e-3,
        "lr_grid": [1e-3, 3e-3],
        "parameters_trainable": 10,
        "parameters_total": 1000,
        "trainable_percent": 1.0,
        "saved_bytes": 2048,
        "peak_rss_bytes": stat,
        "peak_cuda_bytes": None,
        "samples_per_second": stat,
        "wall_seconds": stat,
        **{f"{s}_{m}": stat for s in ("validation", "test", "before_test") for m in ("accuracy", "macro_f1")},
        "vs_best": {"reference": "full", **comparison, "mcnemar_p": 0.25, "mcnemar_p_adjusted": 0.5},
        "vs_before": {**comparison, "mcnemar_p": 0.01, "mcnemar_p_adjusted": 0.02},
    }


def test_report_renders_table_csv_and_chart_from_json(tmp_path):
    result = {
        "task": "planted",
        "model": "tiny",
        "seeds": [1, 2],
        "test_n": 10,
        "selection": "validation macro_f1 with seed 1",
        "methods": [_row("full", 0.9), _row("bitfit", 0.8)],
    }
    files = report.write_files(result, tmp_path)
    assert [p.name for p in files] == ["comparison.json", "comparison.csv", "comparison.png", "findings.json"]
    assert json.loads(files[0].read_text(encoding="utf-8")) == result
    rows = list(csv.DictReader(files[1].open(encoding="utf-8")))
    assert [r["method"] for r in rows] == ["full", "bitfit"] and rows[1]["test_accuracy"] == "0.8"
    assert files[2].stat().st_size > 1000
    console = Console(width=250, record=True)
    report.render(result, files, console)
    text = console.export_text()
    assert "0.800 ± 0.010" in text and "+0.100 [+0.050, +0.150] p=0.5" in text and "2.0 KiB" in text
    # findings (考察): vs before, q=0.02 → a fact; bitfit vs the best, q=0.5 → a possibility decided by more seeds
    findings = json.loads(files[3].read_text(encoding="utf-8"))["findings"]
    facts = [f["claim"]["en"] for f in findings if f["kind"] == "fact"]
    possible = [f["claim"]["en"] for f in findings if f["kind"] == "possibility"]
    assert sorted(c.split(" ")[2] for c in facts) == ["bitfit", "full"] and all(c.startswith("Training") for c in facts)
    assert [c.split(" ")[0] for c in possible] == ["bitfit"]
    assert all("--seeds 5" in f["decide_by"] for f in findings if f["kind"] == "possibility")
    assert text.index("Facts") < text.index("0.800 ± 0.010")


def _recipe():
    path = Path(__file__).resolve().parents[1] / "recipes" / "compare_peft.py"
    spec = importlib.util.spec_from_file_location("compare_peft", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_recipe_compares_methods_each_in_its_own_process(tmp_path):
    """Two methods, two seeds, a two-value grid for one of them: 5 trainings of the tiny model, one epoch each."""
    argv = ["--model", "tiny", "--tiny-hidden", "32", "--train-size", "12", "--epochs", "1", "--seeds", "2"]
    argv += ["--methods", "head-only,bitfit", "--lr-grid", "1x;bitfit=1e-3,1e-2", "--output-dir", str(tmp_path)]
    directory = _recipe().main(argv)
    result = json.loads((directory / "comparison.json").read_text(encoding="utf-8"))
    head, bitfit = result["methods"]
    assert [r["seed"] for r in head["runs"]] == [42, 43] and len(bitfit["lr_search"]) == 2
    assert bitfit["lr"] in (1e-3, 1e-2) and all(r["lr"] == bitfit["lr"] for r in bitfit["runs"])
    run_dirs = [Path(r["run_dir"]) for r in head["runs"] + bitfit["runs"]]
    assert len(set(run_dirs)) == 4 and "head-only-lr0.005-seed42" in run_dirs[0].name
    assert all((d / "model").is_dir() and not (d / "checkpoints").exists() for d in run_dirs)
    assert 0 < head["parameters_trainable"] < bitfit["parameters_trainable"]
    assert all(r["peak_rss_bytes"] > 50 * 2**20 and r["samples_per_second"] > 0 for r in head["runs"])
    assert len(head["runs"][0]["before_test_correct"]) == result["test_n"] == 96
    assert head["vs_best"]["reference"] in ("head-only", "bitfit")
    assert (directory / "comparison.png").is_file() and (directory / "comparison.csv").is_file()
    assert_findings_rules(saved_findings(directory))  # findings (考察): the comparison's, with the paired tests


def test_recipe_refuses_an_unknown_method(tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        _recipe().main(["--model", "tiny", "--methods", "lora,adaptor", "--output-dir", str(tmp_path)])
    assert exited.value.code == 2 and "--methods" in capsys.readouterr().err
