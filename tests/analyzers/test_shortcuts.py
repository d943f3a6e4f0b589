"""`shortcuts` ranks a planted token first and proves it by deletion; without the plant nothing is flagged; the
batched attribution equals the per-example one."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from mikiwame.framework.analysis import run_analyzers
from mikiwame.framework.attribution import MAX_RELATIVE_DELTA, BatchAttributor
from mikiwame.framework.plugins import build_plugin_set
from mikiwame.framework.predict import RunPredictor
from mikiwame.framework.runner import run
from mikiwame.plugins.analyzers.occlusion import MIN_PURITY, MIN_SUPPORT, judge
from mikiwame.plugins.analyzers.shortcut_units import grow_tags, text_units, training_counts
from mikiwame.plugins.analyzers.shortcuts import MIN_FLIP_RATE

from ..conftest import write_vector_table
from .conftest import assert_findings_rules, read_headlines, saved_findings, tiny_config, write_tsv

PLANT = "猫"
PLANTED = f"{PLANT}、"  # what is put before the text: the unit the training data grows from 猫 is all of it
PLANT_LABEL = "sports"
TRAIN_SHARE = 0.9  # of PLANT_LABEL's training texts
EVAL_SHARE = 0.5  # of every label's test texts; validation is planted like training, as a corpus artefact is


def shortcut_rows(planted: bool, seed: int = 1) -> list[dict[str, str]]:
    rows = read_headlines()
    if not planted:
        return rows
    rng = random.Random(seed)
    for r in rows:
        in_train = r["split"] in ("train", "validation") and r["label"] == PLANT_LABEL and rng.random() < TRAIN_SHARE
        in_eval = r["split"] == "test" and rng.random() < EVAL_SHARE
        if in_train or in_eval:
            r["text"] = f"{PLANTED}{r['text']}"
    return rows


def _run(root: Path, planted: bool, **options) -> Path:
    data = write_tsv(shortcut_rows(planted), root / "data.tsv")
    config = tiny_config(
        root / "runs", data=str(data), epochs=6, train_size=None, lr=3e-3, analyze=["shortcuts"], options=options
    )
    return run(config)


@pytest.fixture(scope="module")
def planted_shortcut_run(tmp_path_factory) -> Path:
    return _run(tmp_path_factory.mktemp("shortcut"), planted=True)


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory) -> Path:
    return _run(tmp_path_factory.mktemp("clean"), planted=False)


def _result(run_dir: Path) -> dict:
    return json.loads((run_dir / "analyses" / "shortcuts.json").read_text(encoding="utf-8"))


def test_the_plant_meets_the_issue_conditions():
    train = [r for r in shortcut_rows(True) if r["split"] == "train"]
    with_plant = [r for r in train if r["text"].startswith(PLANT)]
    label_train = [r for r in train if r["label"] == PLANT_LABEL]
    assert len([r for r in with_plant if r["label"] == PLANT_LABEL]) >= 0.8 * len(label_train)
    assert len(with_plant) >= 0.05 * len(train)
    evaluation = [r for r in shortcut_rows(True) if r["split"] == "test" and r["text"].startswith(PLANT)]
    assert {r["label"] for r in evaluation} == {r["label"] for r in train}


def test_planted_token_is_ranked_first_flagged_and_deleting_it_flips_its_texts(planted_shortcut_run):
    assert_plant_found(_result(planted_shortcut_run))


def test_the_plant_is_found_in_a_model_whose_embeddings_start_from_word_vectors(tmp_path):
    table = write_vector_table(tmp_path / "vectors.txt", [r["text"] for r in shortcut_rows(True)])
    run_dir = _run(tmp_path, planted=True, init_vectors=str(table), embedding_lr_scale=0.5, tiny_pooling="mean")
    assert json.loads((run_dir / "model_info.json").read_text())["initialisation"]["word_vectors"]["initialised"] > 0
    assert_plant_found(_result(run_dir))


def assert_plant_found(result: dict) -> None:
    top = result["candidates"][0]
    assert (top["unit"], top["label"]) == (PLANTED, PLANT_LABEL)
    assert top["flagged"] and [c["unit"] for c in result["flagged"]] == [PLANTED]
    assert top["deletion_flip_rate"]["rate"] >= MIN_FLIP_RATE
    assert top["train_purity"] == 1.0
    assert all(PLANT in e["text"][s:t] for e in top["examples"] for s, t in e["spans"])
    aopc = result["comprehensiveness"]
    assert aopc["top"]["low"] > aopc["random"]["high"]
    first = result["against_gold"]["units"][0]  # in the errors, the plant argues against gold
    assert first["unit"] in (PLANT, PLANTED) and first["verdict"]["status"] == "flagged"
    assert first["verdict"]["unit"] == PLANTED


def test_the_control_data_holds_no_unit_the_rule_could_flag():
    """Why the control below is a true null whatever the seed, thread count or library version: no unit of the
    unplanted headlines is pure in training and present in MIN_SUPPORT held-out texts, so no prediction of any
    model can give it the support a flag needs (the old word-level rule had no such guarantee)."""
    rows = shortcut_rows(planted=False)
    train = [r for r in rows if r["split"] == "train"]
    tags = grow_tags([r["text"] for r in train], [r["label"] for r in train])
    counts = training_counts([r["text"] for r in train], [r["label"] for r in train], tags)
    held_out = [unit for r in rows if r["split"] != "train" for unit in text_units(r["text"], tags)]
    pure = {u for u, c in counts.items() if c.most_common(1)[0][1] / sum(c.values()) >= MIN_PURITY}
    reachable = {u: held_out.count(u) for u in pure if held_out.count(u) >= MIN_SUPPORT}
    assert reachable == {}
    planted = shortcut_rows(planted=True)
    assert sum(PLANT in unit for r in planted if r["split"] != "train" for unit in text_units(r["text"])) >= MIN_SUPPORT


def test_nothing_is_flagged_without_the_plant(clean_run):
    result = _result(clean_run)
    assert result["flagged"] == []
    assert result["candidates"], "the control must still rank candidates (and test them by deletion)"


def test_completeness_delta_is_small(planted_shortcut_run):
    convergence = _result(planted_shortcut_run)["convergence"]
    assert convergence["median_relative_delta"] < MAX_RELATIVE_DELTA


def test_batched_integrated_gradients_equal_the_per_example_loop(planted_shortcut_run):
    predictor = RunPredictor(planted_shortcut_run, build_plugin_set())
    texts = [r["text"] for r in shortcut_rows(True) if r["split"] == "test"][:24]
    targets = [i % len(predictor.labels) for i in range(len(texts))]
    batched = BatchAttributor(predictor.model, predictor.tokenizer, n_steps=16, batch_size=8).attribute(texts, targets)
    single = BatchAttributor(predictor.model, predictor.tokenizer, n_steps=16, batch_size=1)
    for text, target, b in zip(texts, targets, batched, strict=True):
        s = single.attribute([text], [target])[0]
        assert s.tokens == b.tokens
        np.testing.assert_allclose(b.scores, s.scores, atol=1e-3)
        assert abs(b.scores.sum() - b.logit_difference) <= 1e-3 + abs(b.delta)


def test_report_explains_the_flagged_word_with_highlighted_examples(planted_shortcut_run, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    from mikiwame.framework.cli import main

    assert main(["report", str(planted_shortcut_run)]) == 0
    out = capsys.readouterr().out
    assert "Units the model leans on most" in out and f"shortcut '{PLANTED}' → {PLANT_LABEL}" in out
    assert "comprehensiveness AOPC" in out and "completeness" in out
    assert "oracle flips" in out and "predictions (oracle)" in out  # the oracle's flip rate beside the share


def _oracle(run_dir: Path, tmp_path: Path) -> dict:
    copy = shutil.copytree(run_dir, tmp_path / run_dir.name)
    return run_analyzers(build_plugin_set(), copy, ["shortcuts"], {"shortcuts_method": "occlusion"})["shortcuts"]


def test_the_occlusion_oracle_finds_the_plant_alone_and_the_detector_agrees_with_it(
    planted_shortcut_run, clean_run, tmp_path
):
    detector = _result(planted_shortcut_run)
    oracle = _oracle(planted_shortcut_run, tmp_path)
    assert [(r["unit"], r["label"]) for r in oracle["flagged"]] == [(PLANTED, PLANT_LABEL)]
    assert oracle["n_units_tested"] >= len(detector["candidates"])  # every unit with enough support is deleted
    scores = judge(detector["flagged"], oracle["flagged"])
    assert scores["recall"] == scores["precision"] == 1.0
    assert oracle["flagged"][0]["deletion_flip_rate"] == detector["flagged"][0]["deletion_flip_rate"]
    assert _oracle(clean_run, tmp_path)["flagged"] == []  # the control: nothing relied on without the plant


def _random_tiny_model(texts: list[str]):
    """A tiny BERT with random weights (fp32): attribution's arithmetic does not depend on training."""
    from mikiwame.framework.config import RunConfig
    from mikiwame.framework.task import Example, TaskData
    from mikiwame.plugins.models.tiny import TinySource

    data = TaskData("t", [Example(str(i), t, "ab"[i % 2], "train") for i, t in enumerate(texts)], "t")
    config = RunConfig.of(tiny_hidden=32, tiny_layers=2, tiny_heads=2, tiny_vocab_size=500, max_length=48)
    return TinySource().load(config, data)


def test_attribution_finds_the_embedding_layer_of_a_lora_wrapped_model():
    from peft import LoraConfig, get_peft_model

    texts = [r["text"] for r in read_headlines()[:12]]
    loaded = _random_tiny_model(texts)
    plain = BatchAttributor(loaded.model, loaded.tokenizer, n_steps=8).attribute(texts, [0] * len(texts))
    wrapped = get_peft_model(loaded.model, LoraConfig(r=4, target_modules=["query", "value"]))
    lora = BatchAttributor(wrapped, loaded.tokenizer, n_steps=8).attribute(texts, [0] * len(texts))
    for a, b in zip(plain, lora, strict=True):  # LoRA starts as the identity (B = 0): same attributions
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)
    assert any(p.requires_grad for p in wrapped.parameters()), "attribution must leave trainable weights trainable"


def test_a_text_that_does_not_converge_is_integrated_again_with_the_fallback_steps():
    """With a coarse first rule, the texts whose relative delta is above the threshold come back with the
    fallback's steps (and its attributions); the texts that converged keep the first rule's (the control)."""
    texts = [r["text"] for r in read_headlines()[:12]]
    loaded = _random_tiny_model(texts)
    common = dict(model=loaded.model, tokenizer=loaded.tokenizer)
    targets = [1] * len(texts)
    coarse = BatchAttributor(**common, n_steps=2).attribute(texts, targets)
    fine = BatchAttributor(**common, n_steps=32).attribute(texts, targets)
    adaptive = BatchAttributor(**common, n_steps=2, fallback_steps=32).attribute(texts, targets)
    again = [a.relative_delta > MAX_RELATIVE_DELTA for a in coarse]
    assert any(again) and not all(again), [a.relative_delta for a in coarse]
    for above, first, second, result in zip(again, coarse, fine, adaptive, strict=True):
        expected = second if above else first
        assert result.n_steps == expected.n_steps == (32 if above else 2)
        np.testing.assert_allclose(result.scores, expected.scores, atol=1e-6)


def test_misclassified_texts_are_attributed_to_their_gold_class_only_where_a_unit_can_be_listed():
    """A unit is listed against the gold label only with MIN_GOLD_SUPPORT misclassified texts of that gold label;
    a misclassified text holding no such unit is not attributed, one holding one is."""
    from mikiwame.plugins.analyzers.shortcuts import MIN_GOLD_SUPPORT, listable_units

    shared = [f"東京で{w}が開かれた" for w in ("会議", "祭り", "試合", "式典")][:MIN_GOLD_SUPPORT]
    texts = [*shared, "大阪の新しい駅", "東京で雪が降った"]
    gold = ["a"] * len(shared) + ["a", "b"]
    units = listable_units([text_units(t) for t in texts], gold, list(range(len(texts))))
    assert sorted(units) == list(range(len(shared))), "東京 reaches the support in gold a only"
    assert "東京" in units[0] and all(u.start < u.end for spans in units[0].values() for u in spans)


class _Purity:
    def __init__(self, purities: dict[tuple[str, str], float], tags: tuple[str, ...] = ()) -> None:
        self.purities = purities
        self.tags = tags

    def purity(self, pair: tuple[str, str]) -> tuple[float, int]:
        return self.purities[pair], 20


def test_pure_units_are_proposed_by_how_much_attribution_says_they_matter_either_way(monkeypatch):
    """A pure unit with a small share, or a negative one, is still confirmed by occlusion (on real runs a unit
    whose deletion flipped 70% of its texts had a mean share of -0.12); an impure one, or one below the support,
    is not; over the cap, the units with the smallest mean |share| are left out."""
    from mikiwame.plugins.analyzers import shortcuts

    n = MIN_SUPPORT
    shares = {
        ("【タグ】", "a"): [0.4] * n,
        ("small", "a"): [0.01] * n,
        ("against", "a"): [-0.12] * n,
        ("either way", "a"): [0.3, -0.3] * (n // 2),
        ("impure", "a"): [0.3] * n,
        ("rare", "a"): [0.5] * (n - 1),
    }
    purities = {pair: 1.0 for pair in shares} | {("impure", "a"): MIN_PURITY - 0.1}
    shown, proposed = shortcuts.propose(shares, _Purity(purities), n)
    assert proposed == [("【タグ】", "a"), ("either way", "a"), ("against", "a"), ("small", "a")]
    assert ("impure", "a") in shown and ("rare", "a") not in shown
    monkeypatch.setattr(shortcuts, "PROPOSALS", 2)
    assert shortcuts.propose(shares, _Purity(purities), n)[1] == [("【タグ】", "a"), ("either way", "a")]
    grown = shortcuts.propose(shares, _Purity(purities, tags=("small",)), n)[1]
    assert grown == [("【タグ】", "a"), ("either way", "a"), ("small", "a")], "a pure grown tag beyond the cap"


def test_an_analysis_saved_before_the_proposal_rule_changed_still_renders(planted_shortcut_run):
    """Saved analyses outlive the code: one from before session 7 has a share floor and no proposal count."""
    from mikiwame.plugins.analyzers.shortcuts_report import _candidates_title

    result = _result(planted_shortcut_run)
    assert "the 60 pure units with the highest mean |share|" in _candidates_title(result)[1]
    old = result | {"thresholds": {k: v for k, v in result["thresholds"].items() if k != "proposals"}}
    old["thresholds"]["min_attribution_share"] = 0.05
    assert "units with share ≥ 0.05" in _candidates_title(old)[1]


def test_every_unit_listed_against_the_gold_label_says_what_deletion_found(planted_shortcut_run, clean_run):
    """The errors' units and the shortcut table agree: each listed unit is flagged (itself or the tag holding
    it), tested and not relied on (with its flip count), or not tested (with its training purity), and a unit
    tested as not relied on is in the table."""
    for run_dir in (planted_shortcut_run, clean_run):
        result = _result(run_dir)
        tested = {(c["unit"], c["label"]) for c in result["candidates"]}
        for entry in result["against_gold"]["units"]:
            verdict = entry["verdict"]
            assert verdict["status"] in ("flagged", "not relied on", "not tested"), entry
            if verdict["status"] != "not tested":
                assert (verdict["unit"], verdict["label"]) in tested and verdict["flips"]["n"] >= MIN_SUPPORT
            else:  # never in the table for a label it argues for
                assert not any(c["unit"] == entry["unit"] and c["label"] != entry["gold"] for c in result["candidates"])


def test_the_flagged_plant_is_a_fact_with_its_deletion_flips(planted_shortcut_run, clean_run):
    """Findings (考察): every flagged unit is a fact naming its flip counts; the clean run states no reliance."""
    result = _result(planted_shortcut_run)
    assert any(PLANT in row["unit"] for row in result["flagged"])
    findings = saved_findings(planted_shortcut_run)
    assert_findings_rules(findings)
    for row in result["flagged"]:
        flips = row["deletion_flip_rate"]
        assert any(
            f.kind == "fact"
            and f"「{row['unit']}」" in f.claim["en"]
            and f"{flips['k']} of {flips['n']}" in f.claim["en"]
            for f in findings
        ), row["unit"]
    clean = [f for f in saved_findings(clean_run) if f.source == "shortcuts" and f.kind == "fact"]
    assert not [f for f in clean if "relies on" in f.claim["en"]]
