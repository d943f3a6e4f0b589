"""What a user sees: the recipe's output and run directory, the offline fall-back, `mikiwame predict`,
`report` and `plugins`, and a run directory that is never left half-written."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from mikiwame.framework import hookimpl
from mikiwame.framework.plugins import build_plugin_set
from mikiwame.framework.predict import RunPredictor
from mikiwame.framework.runner import run

from .conftest import run_cli, run_recipe, tiny_config


def mikiwame(*args: str) -> subprocess.CompletedProcess:
    return run_cli(*args)


@pytest.fixture(scope="module")
def offline_recipe_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("recipe")
    done = run_recipe(
        "--output-dir",
        str(out),
        "--train-size",
        "120",
        "--epochs",
        "2",
        "--tiny-hidden",
        "32",
        env={"HF_HUB_OFFLINE": "1", "COLUMNS": "120"},
    )
    return done, out


def test_offline_recipe_falls_back_loudly_and_prints_the_whole_report(offline_recipe_run):
    done, out = offline_recipe_run
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert "OFFLINE FALLBACK: 'cl-tohoku/bert-base-japanese-v3' could not be loaded" in text
    for expected in (
        "Model",
        "parameters",
        "pre-training data",
        "Before fine-tuning, validation split",
        "Before / after fine-tuning, test split",
        "classification_report",
        "Confusion matrix",
        "macro-F1",
        "(n=96)",
        "full fine-tuning",
    ):
        assert expected in text, expected
    (run_dir,) = out.iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["model"]["fallback"] is True and metrics["model"]["peft"] == "full"
    assert set(metrics["before"]) == set(metrics["after"]) == {"validation", "test"}
    assert metrics["after"]["test"]["accuracy"]["n"] == 96
    assert len(metrics["epochs"]) == 2 and "validation_loss" in metrics["epochs"][0]


def test_run_directory_holds_everything_needed_to_reproduce_and_inspect(offline_recipe_run):
    _, out = offline_recipe_run
    (run_dir,) = out.iterdir()
    for name in (
        "config.json",
        "metrics.json",
        "predictions.jsonl",
        "model_info.json",
        "versions.json",
        "data_checks.json",
        "plots/confusion_matrix.png",
        "plots/training_curves.png",
        "model/peft.json",
        "model/vocab.txt",
        "model/config.json",
    ):
        assert (run_dir / name).is_file(), name
    versions = json.loads((run_dir / "versions.json").read_text())
    assert versions["seed"] == 42 and "torch" in versions
    rows = [json.loads(line) for line in (run_dir / "predictions.jsonl").open()]
    assert {r["split"] for r in rows} == {"train", "validation", "test"}
    assert set(rows[0]) == {"id", "text", "gold", "predicted", "probabilities", "split"}
    assert abs(sum(rows[0]["probabilities"].values()) - 1) < 1e-4


def test_no_fallback_makes_an_unreachable_model_an_error(tmp_path):
    done = run_recipe("--no-fallback", "--output-dir", str(tmp_path), env={"HF_HUB_OFFLINE": "1"})
    assert done.returncode == 2
    assert "model 'cl-tohoku/bert-base-japanese-v3' is not available" in done.stderr
    assert "Traceback" not in done.stderr and not any(tmp_path.iterdir())


def test_a_missing_model_directory_is_named(tmp_path):
    done = run_recipe("--model", "./no/such/model", "--output-dir", str(tmp_path))
    assert done.returncode == 2 and "model directory ./no/such/model does not exist" in done.stderr


def test_predict_labels_new_texts_from_a_finished_run(finished_run):
    texts = ["巨人が阪神に逆転勝ち", "日銀が追加利上げを決定"]
    done = mikiwame("predict", str(finished_run), *texts)
    assert done.returncode == 0, done.stderr
    expected = RunPredictor(finished_run, build_plugin_set()).predict(texts)
    for p in expected:
        line = next(line for line in done.stdout.splitlines() if p.text in line)
        assert p.label in line and f"{p.probabilities[p.label]:.3f}" in line


def test_predict_reads_a_file(finished_run, tmp_path):
    texts = tmp_path / "texts.txt"
    texts.write_text("\ufeff首相が会見\r\n\r\n新型スマホ発売\r\n", encoding="utf-8")
    done = mikiwame("predict", str(finished_run), "--file", str(texts))
    assert done.returncode == 0, done.stderr
    assert "首相が会見" in done.stdout and "新型スマホ発売" in done.stdout


def test_report_rerenders_a_run_as_terminal_and_json(finished_run):
    terminal = mikiwame("report", str(finished_run))
    assert terminal.returncode == 0 and "Before / after fine-tuning" in terminal.stdout
    document = json.loads(mikiwame("report", str(finished_run), "--format", "json").stdout)
    assert document["schema_version"] == 1
    assert {"model", "data", "before_after", "classification_report", "confusion_matrix"} <= set(document["sections"])


def test_the_output_folder_stands_for_its_newest_finished_run(finished_run, tmp_path):
    runs = tmp_path / "runs"
    for name, written in (("20261123-120000-x-10", 1), ("20261123-120000-x-2", 2), ("20261123-120000-x-9", 0)):
        shutil.copytree(finished_run, runs / name)
        os.utime(runs / name / "metrics.json", ns=(written * 10**9, written * 10**9))
    (runs / ".20991231-000000-x.partial").mkdir()
    document = json.loads(mikiwame("report", str(runs), "--format", "json").stdout)
    assert document["directory"].endswith("20261123-120000-x-2")  # the last written, whatever its name


def test_report_on_a_partial_or_missing_directory_is_a_clear_error(tmp_path):
    done = mikiwame("report", str(tmp_path / "nope"))
    assert done.returncode == 2 and "does not exist" in done.stderr


def test_plugins_lists_each_plugin_and_what_it_registered():
    done = mikiwame("plugins")
    assert done.returncode == 0
    assert "lora" in done.stdout and "tasks: headlines" in done.stdout


class _Interrupt:
    @hookimpl
    def mikiwame_on_step_end(self, run, step):
        if step.global_step == 5:
            raise KeyboardInterrupt


def test_ctrl_c_never_leaves_a_finished_looking_directory(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        run(tiny_config(tmp_path), plugins=build_plugin_set(extra=[("interrupt", _Interrupt())]))
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_after_a_checkpoint_keeps_it_under_a_partial_name(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        run(tiny_config(tmp_path, save_every=2), plugins=build_plugin_set(extra=[("interrupt", _Interrupt())]))
    (kept,) = tmp_path.iterdir()
    assert kept.name.endswith(".partial") and not (kept / "metrics.json").exists()
    assert (kept / "checkpoints" / "step-000004").is_dir()


def test_the_command_and_its_plugins_start_without_scikit_learn_scipy_stats_or_matplotlib():
    """Each costs every command's start-up about a second; only fitting, interval and plotting code imports them."""
    probe = (
        "import sys; from mikiwame.framework import cli; from mikiwame.framework.plugins import build_plugin_set; "
        "build_plugin_set(); print(sorted(m for m in ('sklearn', 'scipy.stats', 'matplotlib') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
