"""`mikiwame countermeasures`: a planted shortcut is cured (shift-set accuracy rises beyond its interval), a cure
of a unit that is no shortcut reports no clear change, and repeating the command re-runs nothing."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

from mikiwame.framework import hookimpl
from mikiwame.framework.countermeasures import command
from mikiwame.framework.plugins import build_plugin_set
from mikiwame.framework.results import RunResults
from mikiwame.framework.runner import run
from mikiwame.plugins.countermeasures import summary_findings

from .conftest import REPO, one_torch_thread, tiny_config

UNIT = "《猫》"


def planted_run(root: Path, uniform: bool) -> Path:
    """The bundled headlines with UNIT prefixed to every sports text of train and validation (a shortcut), or
    to a random half of every label's texts (no shortcut); the shortcuts analyzer's flagged unit written as its
    saved result (the countermeasures read only the unit strings)."""
    with (REPO / "data" / "headlines" / "headlines.tsv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    rng = random.Random(0)
    for r in rows:
        planted = rng.random() < 0.5 if uniform else r["label"] == "sports" and r["split"] != "test"
        if planted:
            r["text"] = UNIT + r["text"]
    data = root / "data.tsv"
    with data.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), delimiter="\t")
        writer.writeheader()
        writer.writerows(rows)
    config = tiny_config(
        root / "runs", data=str(data), train_size=None, epochs=3, lr=3e-3, batch_size=16, tiny_vocab_size=2000,
        max_length=48, patience=0,
    )  # fmt: skip
    done = run(config)
    (done / "analyses").mkdir(exist_ok=True)
    flagged = {"flagged": [{"unit": UNIT, "label": "sports"}]}
    (done / "analyses" / "shortcuts.json").write_text(json.dumps(flagged, ensure_ascii=False), encoding="utf-8")
    return done


def countermeasure_findings(run_dir: Path) -> list:
    """What `mikiwame report RUN_DIR` states about the countermeasures (the built-in's findings hook; the other
    analyzers' findings would need a whole shortcuts.json, which these runs only hold the unit strings of)."""
    return summary_findings.mikiwame_findings(RunResults.load(run_dir))


def test_a_planted_shortcut_is_cured_and_repeating_reruns_nothing(tmp_path):
    with one_torch_thread():
        done = planted_run(tmp_path, uniform=False)
        plugins = build_plugin_set()
        path = command(done, plugins, ["shortcut-augment"], 2, False)
        summary = json.loads(path.read_text(encoding="utf-8"))
        (row,) = summary["rows"]
        assert row["addresses"] == {"analyzer": "shortcuts", "finding": "shortcut", "unit": UNIT, "label": "sports"}
        target = row["target"]
        assert target["metric"] == "shift-set accuracy" and target["baseline"] < 0.2
        assert target["interval"][0] > 0 and row["verdict"] == "helps"
        assert set(summary) == {"schema_version", "run", "seeds", "baseline", "rows"} and summary["seeds"] == [42, 43]
        runs = sorted(p for p in (done / "countermeasures").rglob("metrics.json"))
        assert len(runs) == 4
        stamps = [p.stat().st_mtime_ns for p in runs]
        again = json.loads(command(done, plugins, ["shortcut-augment"], 2, False).read_text(encoding="utf-8"))
    assert sorted((done / "countermeasures").rglob("metrics.json")) == runs
    assert [p.stat().st_mtime_ns for p in runs] == stamps
    assert again["rows"] == summary["rows"]
    (cured,) = countermeasure_findings(done)
    assert cured.kind == "fact" and "shortcut-augment raised the shift-set accuracy" in cured.claim["en"]
    assert cured.evidence[0].interval == tuple(target["interval"]) and "intervention" in cured.tags


def test_deleting_a_unit_that_is_no_shortcut_is_no_clear_change(tmp_path):
    with one_torch_thread():
        done = planted_run(tmp_path, uniform=True)
        summary = json.loads(command(done, build_plugin_set(), ["shortcut-delete"], 2, False).read_text())
    (row,) = summary["rows"]
    low, high = row["target"]["interval"]
    assert low <= 0 <= high and row["verdict"] == "no clear change"
    (unclear,) = countermeasure_findings(done)
    assert unclear.kind == "possibility" and "may change" in unclear.claim["en"]
    assert unclear.decide_by.startswith(f"mikiwame countermeasures {done} --only shortcut-delete --seeds 4")


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
