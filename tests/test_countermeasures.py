"""`mikiwame countermeasures` on real analyzer output: a tag planted into one label (the recall benchmark's
generator, anti-correlated in the test split) is flagged by the `shortcuts` analyzer itself, and the cure it
calls for raises the shift-set accuracy beyond its interval; the control, the same tag in every label alike,
is not flagged, and a cure of it reports no clear change; repeating the command re-runs nothing; two processes
give the figures one gives."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mikiwame.framework import hookimpl
from mikiwame.framework.config import RunConfig
from mikiwame.framework.countermeasure import Target
from mikiwame.framework.countermeasures import Plan, Treatment, command, run_countermeasures, write_summary
from mikiwame.framework.discussion import collect_findings
from mikiwame.framework.plugins import build_plugin_set
from mikiwame.framework.results import RunResults
from mikiwame.framework.runner import run
from mikiwame.framework.task import Example

from .analyzers.conftest import read_headlines, write_tsv
from .conftest import REPO, benchmark_module, one_torch_thread, tiny_config

shapes = benchmark_module("planted_shapes")
TAG = next(s for s in shapes.SHAPES if s.name == "star-run")  # ★★★ at the start of a text
LABEL = "sports"
SEEDS = 2


def headlines() -> list[Example]:
    return [Example(str(i), r["text"], r["label"], r["split"]) for i, r in enumerate(read_headlines())]


def everywhere(examples: list[Example], share: float = 0.5) -> list[Example]:
    """The control: the tag in `share` of every label's texts, every split alike, so it stands for no label."""
    rng = random.Random(1)
    return [Example(e.id, TAG.plant(e.text) if rng.random() < share else e.text, e.label, e.split) for e in examples]


def analysed_run(root: Path, examples: list[Example], batch_size: int = 12) -> Path:
    """A tiny run on `examples` with the shortcuts analyzer (gradient x input: the cheap proposer). Dropout 0
    and a batch of 12, which divides the 468 training texts and the 864 of the augmented ones: re-runs on 2
    processes then equal those on 1 (each process draws its own dropout masks, and a short last batch is
    filled with a repeated text on 2 processes only)."""
    root.mkdir(parents=True, exist_ok=True)
    rows = [{"text": e.text, "label": e.label, "split": e.split} for e in examples]
    config = tiny_config(
        root / "runs", task="csv", data=str(write_tsv(rows, root / "data.tsv")), train_size=None, epochs=6, lr=3e-3,
        batch_size=batch_size, tiny_vocab_size=2000, max_length=48, patience=0, dropout=0.0, analyze=["shortcuts"],
        options={"split_column": "split", "shortcuts_method": "gxi"},
    )  # fmt: skip
    return run(config)


def flagged(run_dir: Path) -> list[tuple[str, str]]:
    analysis = json.loads((run_dir / "analyses" / "shortcuts.json").read_text(encoding="utf-8"))
    return [(f["unit"], f["label"]) for f in analysis["flagged"]]


def countermeasure_findings(run_dir: Path) -> list:
    """What `mikiwame report RUN_DIR` states, every analyzer's findings with the countermeasures'."""
    return collect_findings(build_plugin_set(), RunResults.load(run_dir))


def read(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def cured(tmp_path_factory) -> tuple[Path, dict]:
    """The planted run and the summary of `mikiwame countermeasures RUN --only shortcut-augment --seeds 2`."""
    root = tmp_path_factory.mktemp("planted")
    with one_torch_thread():
        done = analysed_run(root, shapes.plant(headlines(), {LABEL: TAG}, purity=0.9, test="anti", seed=1))
        summary = read(command(done, build_plugin_set(), ["shortcut-augment"], SEEDS, False))
    return done, summary


@pytest.mark.slow
def test_a_tag_the_analyzer_flags_is_cured_and_repeating_reruns_nothing(cured):
    done, summary = cured
    assert (TAG.unit, LABEL) in flagged(done)
    (row,) = summary["rows"]
    assert row["addresses"] == {"analyzer": "shortcuts", "finding": "shortcut", "unit": TAG.unit, "label": LABEL}
    target = row["target"]
    assert target["metric"] == "shift-set accuracy" and target["baseline"] < 0.2
    assert target["interval"][0] > 0 and row["verdict"] == "helps"
    assert summary["seeds"] == [42, 43] and (summary["trained"], summary["reused"]) == (4, 0)
    runs = sorted((done / "countermeasures").rglob("metrics.json"))
    folders = sorted(p for p in (done / "countermeasures").rglob("*") if p.is_dir())
    stamps = [p.stat().st_mtime_ns for p in runs]
    with one_torch_thread():
        again = read(command(done, build_plugin_set(), ["shortcut-augment"], SEEDS, False))
    assert sorted(p for p in (done / "countermeasures").rglob("*") if p.is_dir()) == folders
    assert [p.stat().st_mtime_ns for p in runs] == stamps and len(runs) == 4
    assert (again["trained"], again["reused"]) == (0, 4) and again["rows"] == summary["rows"]
    (finding,) = [f for f in countermeasure_findings(done) if "shortcut-augment" in f.claim["en"]]
    assert finding.kind == "fact" and "raised the shift-set accuracy" in finding.claim["en"]
    assert finding.evidence[0].interval == tuple(target["interval"]) and "intervention" in finding.tags


@pytest.mark.slow
def test_the_control_tag_is_not_flagged_and_curing_it_is_no_clear_change(tmp_path):
    plugins = build_plugin_set()
    with one_torch_thread():
        done = analysed_run(tmp_path, everywhere(headlines()), batch_size=16)
        assert not [unit for unit, _ in flagged(done) if unit in TAG.unit or TAG.unit in unit]
        config = RunConfig.load(done / "config.json", plugins.option_types())
        asked = Treatment(
            plugins.countermeasures.get("shortcut-delete"),
            Target("shortcuts", "shortcut", "shift-set accuracy", {"unit": TAG.unit, "label": LABEL}),
            done / "countermeasures" / "asked",
        )
        summary = run_countermeasures(Plan(done, config, [42, 43], [asked]), plugins)
    (row,) = summary["rows"]
    low, high = row["target"]["interval"]
    assert low <= 0 <= high and row["verdict"] == "no clear change", row
    write_summary(summary, done / "countermeasures")
    (finding,) = [f for f in countermeasure_findings(done) if "shortcut-delete" in f.claim["en"]]
    assert finding.kind == "possibility" and "may change" in finding.claim["en"]
    assert finding.decide_by.startswith(f"mikiwame countermeasures {done} --only shortcut-delete --seeds 4")


@pytest.mark.slow
def test_two_processes_give_the_summary_one_process_gives(cured, tmp_path):
    """`accelerate launch --num_processes 2` (gloo, CPU) of the same command on a copy of the planted run: each
    process takes half of every batch, so every re-run sees the batches the 1-process re-run saw, epoch by
    epoch (its first two epochs' training losses agree to 1e-4). Only the order in which the processes' gradients
    are summed differs; six epochs at lr 3e-3 grow that into a few texts, so the figures agree to 0.05 and
    every verdict is the same."""
    done, one = cured
    copy = tmp_path / done.name
    shutil.copytree(done, copy, ignore=shutil.ignore_patterns("countermeasures"))
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"]
    command_line = [*launch, "--main_process_port", "29519", "-m", "mikiwame.framework.cli", "countermeasures"]
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    args = [str(copy), "--only", "shortcut-augment", "--seeds", str(SEEDS)]
    done_two = subprocess.run([*command_line, *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=900)
    assert done_two.returncode == 0, done_two.stderr[-3000:]
    two = read(copy / "countermeasures" / "summary.json")
    pairs = [
        (read(done / "countermeasures" / run / "metrics.json"), read(copy / "countermeasures" / other / "metrics.json"))
        for run, other in zip(runs_of(one), runs_of(two), strict=True)
    ]
    assert len(pairs) == 4 and {(a["num_processes"], b["num_processes"]) for a, b in pairs} == {(1, 2)}
    for a, b in pairs:
        assert a["optimizer_steps"] == b["optimizer_steps"]
        for epoch_a, epoch_b in zip(a["epochs"][:2], b["epochs"][:2], strict=True):
            assert epoch_b["train_loss"] == pytest.approx(epoch_a["train_loss"], rel=1e-4)
    assert two["seeds"] == one["seeds"] and len(two["rows"]) == len(one["rows"]) == 1
    for row_one, row_two in zip(one["rows"], two["rows"], strict=True):
        assert row_two["verdict"] == row_one["verdict"]
        for figure in ("accuracy", "macro_f1", "target"):
            assert row_two[figure]["delta"] == pytest.approx(row_one[figure]["delta"], abs=0.05), figure


def runs_of(summary: dict) -> list[str]:
    """The summary's run folders (relative to it), baseline first, in seed order."""
    return [*summary["baseline"]["runs"], *(run for row in summary["rows"] for run in row["runs"])]


class OutsideCures:
    """An outside plugin: one countermeasure and a training objective that counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    @hookimpl
    def mikiwame_register_countermeasures(self, register):
        register(OutsideCure())

    @hookimpl
    def mikiwame_training_loss(self, run, model, inputs, logits):
        self.calls += 1
        assert logits.shape[0] == inputs["input_ids"].shape[0]
        return logits.sum() * 0.0


class OutsideCure:
    name, description, analyzer, sources = "outside", "does nothing", "curves", ("nobody",)

    def targets(self, analysis, results):
        return []

    def apply(self, config, target):
        return config


def test_outside_plugins_register_countermeasures_and_add_to_the_training_loss(tmp_path):
    plugin = OutsideCures()
    plugins = build_plugin_set(extra=[("outside", plugin)])
    assert plugins.countermeasures.get("outside").description == "does nothing"
    assert "outside" in plugins.registered_by()["outside"]["countermeasures"]
    with one_torch_thread():
        done = run(tiny_config(tmp_path, epochs=1), plugins)
    steps = json.loads((done / "metrics.json").read_text())["optimizer_steps"]
    assert plugin.calls == steps > 0
