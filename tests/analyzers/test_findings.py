"""Findings (考察) on real runs: the two rules hold for every built-in analyzer's findings on a tiny run with
every analyzer, the planted run (a model that learned little) and a fitted classifier; a strong planted effect
is a fact and a weak one a possibility (at the evidence level, through the hook); an outside plugin's finding
appears in every reporter; `mikiwame analyze` writes findings.json."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
from rich.console import Console

from mikiwame.framework import hookimpl
from mikiwame.framework.cli import main
from mikiwame.framework.config import RunConfig
from mikiwame.framework.discussion import collect_findings
from mikiwame.framework.findings import Evidence, fact, possibility
from mikiwame.framework.plugins import build_plugin_set
from mikiwame.framework.results import RunResults
from mikiwame.framework.runner import collect_sections, run
from mikiwame.plugins.reporters.terminal import TerminalReporter

from ..conftest import labelled_rows
from .conftest import analyzer_config, assert_findings_rules, planted_rows, saved_findings, write_tsv

ALL = ["errors", "token-stats", "curves", "calibration", "shortcuts", "entity-bias"]


@pytest.fixture(scope="module")
def every_analyzer_run(tmp_path_factory) -> Path:
    """A tiny model that learns (full training split, 6 epochs) with every built-in analyzer."""
    root = tmp_path_factory.mktemp("every")
    data = write_tsv(planted_rows(), root / "planted.tsv")
    config = analyzer_config(
        root / "runs", data=str(data), epochs=6, analyze=ALL, shortcuts_method="occlusion", lang="ja"
    )
    return run(config)


@pytest.fixture(scope="module")
def classifier_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("classifier")
    rows = labelled_rows(per_label=20)
    path = root / "data.tsv"
    path.write_text("text\tlabel\n" + "".join(f"{t}\t{lab}\n" for t, lab in rows), encoding="utf-8")
    config = RunConfig.of(
        task="csv", data=str(path), model="tfidf-lr", output_dir=str(root / "runs"), analyze=["errors", "calibration"]
    )
    return run(config)


def test_every_run_writes_findings_that_keep_the_two_rules(every_analyzer_run, planted_run, classifier_run):
    sources = set()
    for run_dir in (every_analyzer_run, planted_run, classifier_run):
        findings = saved_findings(run_dir)
        assert_findings_rules(findings)
        assert findings == collect_findings(build_plugin_set(), RunResults.load(run_dir))  # re-derived the same
        sources |= {f.source for f in findings}
    assert {"run", "errors", "token-stats", "calibration", "entity-bias", "curves"} <= sources


def test_the_planted_word_is_a_fact_about_the_data_not_the_model(planted_run):
    """token-stats counts training texts: its planted word is a fact, tagged as one about the data."""
    data_facts = [f for f in saved_findings(planted_run) if f.source == "token-stats" and f.kind == "fact"]
    planted = [f for f in data_facts if "「猫」" in f.claim["en"]]
    assert planted and planted[0].tags == ("data",) and "sports" in planted[0].claim["en"]


def test_every_flagged_shortcut_and_significant_entity_effect_is_a_fact(every_analyzer_run):
    findings = saved_findings(every_analyzer_run)
    analyses = RunResults.load(every_analyzer_run).analyses
    for row in analyses["shortcuts"]["flagged"]:
        assert any(f.kind == "fact" and f"「{row['unit']}」" in f.claim["en"] for f in findings), row["unit"]
    entity = [f for f in findings if f.source == "entity-bias"]
    assert entity and all(f.kind == "fact" or f.decide_by and "--entity-bias-k" in f.decide_by for f in entity)


def shortcut_row(unit: str, k: int, n: int, flagged: bool, purity: float = 1.0) -> dict:
    from mikiwame.framework.metrics import wilson_interval

    low, high = wilson_interval(k, n)
    return {
        "unit": unit,
        "label": "sports",
        "support": n,
        "train_count": 30,
        "train_purity": purity,
        "deletion_flip_rate": {"k": k, "n": n, "rate": k / n, "low": low, "high": high},
        "flagged": flagged,
        "folded_into": None,
    }


class FiguresOnly(RunResults):
    """A run holding only the figures a findings rule reads: the rule is under test here, not the result's
    whole shape (which tests/hostile/test_analyses.py holds the validation layer to)."""

    def analysis(self, name: str, schema: object) -> object:
        return self.analyses.get(name)


def planted_results(tmp_path: Path, analyses: dict) -> RunResults:
    return FiguresOnly(tmp_path, {"recipe": "lora_headlines"}, {}, {}, {}, analyses)


def test_a_strong_planted_effect_is_a_fact_and_a_weak_one_a_possibility(tmp_path):
    """At the evidence level, through the hook: deleting 【話題】 flips 21 of 23 (flagged) against a pure unit
    whose deletion flipped 2 of 4 (too few texts to tell from the rule's 50%), and 0 of 30 (not relied on)."""
    strong, weak, none = (
        shortcut_row("【話題】", 21, 23, True),
        shortcut_row("速報", 2, 4, False),
        shortcut_row("号", 0, 30, False),
    )
    shortcuts = {
        "thresholds": {"min_purity": 0.8, "min_flip_rate": 0.5},
        "flagged": [strong],
        "candidates": [strong, weak, none],
    }
    found = collect_findings(build_plugin_set(), planted_results(tmp_path, {"shortcuts": shortcuts}))
    assert_findings_rules(found)
    by_unit = {u: [f for f in found if f"「{u}」" in f.claim["en"]] for u in ("【話題】", "速報", "号")}
    assert [f.kind for f in by_unit["【話題】"]] == ["fact", "possibility"]  # the flips; why it was learned
    assert "21 of 23" in by_unit["【話題】"][0].claim["en"] and by_unit["【話題】"][0].evidence[0].n == 23
    cures = by_unit["【話題】"][1].decide_by  # the registered cures of a shortcut, not a placeholder
    assert cures.startswith(f"mikiwame countermeasures {tmp_path} --only shortcut-")
    assert "shortcut-delete" in cures and "shortcut-augment" in cures
    assert "NAME" not in cures and "weight-decay" not in cures
    assert [f.kind for f in by_unit["速報"]] == ["possibility"] and "--shortcuts-max-texts" in by_unit["速報"][
        0
    ].decide_by
    assert [f.kind for f in by_unit["号"]] == ["fact"] and "does not rely" in by_unit["号"][0].claim["en"]


def entity_result(entity_flips: int, baseline_flips: int, n: int = 300) -> dict:
    from mikiwame.framework.metrics import wilson_interval

    def rate(k: int) -> dict:
        low, high = wilson_interval(k, n)
        return {"k": k, "n": n, "rate": k / n, "low": low, "high": high}

    delta = {"mean": 0.0, "low": 0.0, "high": 0.0, "n": n}
    return {
        "swaps": {"flip_rate": rate(entity_flips), "mean_abs_delta": delta},
        "non_entity_baseline": {"flip_rate": rate(baseline_flips), "mean_abs_delta": delta},
        "entities": [],
    }


@pytest.mark.parametrize(("flips", "kind"), [(60, "fact"), (14, "possibility")])
def test_entity_swaps_are_a_fact_only_when_they_flip_more_than_the_baseline(tmp_path, flips, kind):
    found = collect_findings(build_plugin_set(), planted_results(tmp_path, {"entity-bias": entity_result(flips, 10)}))
    assert_findings_rules(found)
    assert [f.kind for f in found] == [kind]


def curves_result(tmp_path: Path, rise: dict | None) -> dict:
    epochs = [
        {"epoch": 1, "train_loss": 1.5, "validation_loss": 1.2},
        {"epoch": 2, "train_loss": 0.9, "validation_loss": 0.8},
        {"epoch": 3, "train_loss": 0.5, "validation_loss": 1.0},
        {"epoch": 4, "train_loss": 0.3, "validation_loss": 1.3},
    ]
    if rise:
        epochs[3]["validation_loss_rise"] = rise
    diagnosis = {"best_index": 1, "overfitting": True, "verdict": "over-fitting"}
    return {"runs": [{"directory": str(tmp_path), "epochs": epochs, "diagnosis": diagnosis}]}


@pytest.mark.parametrize(
    ("rise", "kind"),
    [
        ({"value": 0.5, "low": 0.3, "high": 0.7, "n": 96}, "fact"),
        ({"value": 0.5, "low": -0.1, "high": 1.1, "n": 96}, "possibility"),
        (None, "possibility"),
    ],
)
def test_over_fitting_is_a_fact_only_with_a_paired_rise_that_excludes_zero(tmp_path, rise, kind):
    found = collect_findings(build_plugin_set(), planted_results(tmp_path, {"curves": curves_result(tmp_path, rise)}))
    assert_findings_rules(found)
    assert [f.kind for f in found] == [kind]
    assert "0.800 at epoch 2" in found[0].claim["en"] or "0.800" in found[0].claim["en"]


class OutsideFindings:
    """An outside plugin's findings, registered like any plugin."""

    @hookimpl
    def mikiwame_findings(self, results):
        evidence = [Evidence("outside figure", 0.7, 50, (0.6, 0.8), "Wilson 95%")]
        return [
            fact("外部プラグインの事実。", "An outside fact.", evidence, "test split", "outside"),
            possibility(
                "外部プラグインの仮説の可能性がある。",
                "An outside hypothesis may hold.",
                [],
                "test split",
                "outside",
                "mikiwame analyze RUN outside",
            ),
        ]


def test_an_outside_plugins_findings_appear_in_every_reporter(planted_run, tmp_path, capsys):
    plugins = build_plugin_set(extra=[("outside-findings", OutsideFindings())])
    results = RunResults.load(shutil.copytree(planted_run, tmp_path / planted_run.name))
    sections = collect_sections(plugins, results, "en")
    assert sections[0].name == "findings"
    out = io.StringIO()
    TerminalReporter(Console(file=out, width=200)).render(results, sections)
    terminal = out.getvalue()
    assert (
        terminal.index("Findings") < terminal.index("An outside fact.") < terminal.index("Before / after fine-tuning")
    )
    plugins.reporters.get("json").render(results, sections)
    document = json.loads(capsys.readouterr().out)
    html = plugins.reporters.get("html").render(results, sections).read_text(encoding="utf-8")
    capsys.readouterr()
    markdown = plugins.reporters.get("markdown").render(results, sections).read_text(encoding="utf-8")
    claims = [f["claim"]["en"] for f in document["sections"]["findings"]["data"]["findings"]]
    for text in (terminal, html, markdown, "\n".join(claims)):
        assert "An outside fact." in text and "An outside hypothesis may hold." in text
    assert html.index('id="section-findings"') < html.index("An outside fact.") < html.index('id="section-model"')
    assert markdown.index("Facts") < markdown.index("An outside fact.") < markdown.index("Possibilities")


def test_japanese_report_titles_and_findings(planted_run, capsys):
    assert main(["report", str(planted_run), "--lang", "ja", "--format", "markdown"]) == 0
    text = capsys.readouterr().out
    assert text.index("## 考察") < text.index("## モデル情報") < text.index("## 混同行列（test）")
    assert "### 事実" in text and "### 可能性" in text and "（データについての事実）" in text


def test_analyze_rewrites_findings_json(planted_run, tmp_path, capsys):
    run_dir = shutil.copytree(planted_run, tmp_path / planted_run.name)
    (run_dir / "findings.json").unlink()
    assert main(["analyze", str(run_dir), "calibration", "--lang", "en"]) == 0
    assert "Findings" in capsys.readouterr().out
    assert_findings_rules(saved_findings(run_dir))
