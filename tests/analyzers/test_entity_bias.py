"""entity-bias finds a planted entity–label link, its identity control is exactly zero, and counterfactual
augmentation (`--entities-augment entity-swap`) at least halves the flip rate with non-overlapping intervals."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest

from mikiwame.framework.cli import main
from mikiwame.framework.entities import LISTS, load_entity_lists, mask_entities, swap
from mikiwame.framework.japanese import PERSON, find_entities
from mikiwame.framework.plugins import build_plugin_set
from mikiwame.framework.runner import run
from mikiwame.studies.entity_bias_mitigation import compare_mitigations

from ..conftest import write_vector_table
from .conftest import assert_findings_rules, saved_findings, tiny_config, write_tsv

BIASED = "山田太郎"
OTHERS = ["佐藤健一", "鈴木花子", "高橋翔太", "田中美咲", "伊藤大輔"]
TOPICS = {
    "economy": ["株価が上昇した", "円安が進んだ", "決算を発表した", "増税を検討した", "輸出が伸びた", "賃金を上げた"],
    "sports": ["試合に勝利した", "優勝を決めた", "ゴールを決めた", "連勝を伸ばした", "代表に選ばれた", "新記録"],
}


def entity_rows(seed: int = 3) -> list[dict[str, str]]:
    """BIASED always comes with `economy` (whatever the topic); the other names follow the topic. The test
    split holds BIASED only with sports topics, so a model that learned the name predicts economy there."""
    rng = random.Random(seed)
    rows = []

    def add(split: str, name: str, topic: str, label: str) -> None:
        text = rng.choice(["{n}が{p}", "{n}、{p}", "{p}と{n}が語った"]).format(n=name, p=rng.choice(TOPICS[topic]))
        rows.append({"id": f"e{len(rows)}", "label": label, "split": split, "text": text})

    for split, n in (("train", 200), ("validation", 60)):
        for i in range(n):
            topic = rng.choice(sorted(TOPICS))
            name = BIASED if i % 5 == 0 else rng.choice(OTHERS)
            add(split, name, topic, "economy" if name == BIASED else topic)
    for _ in range(30):
        add("test", BIASED, "sports", "sports")
    for _ in range(30):
        topic = rng.choice(sorted(TOPICS))
        add("test", rng.choice(OTHERS), topic, topic)
    return rows


def _run(root: Path, epochs: int = 8, **options) -> Path:
    data = write_tsv(entity_rows(), root / "entities.tsv")
    return run(tiny_config(root / "runs", data=str(data), epochs=epochs, analyze=["entity-bias"], options=options))


def _analysis(run_dir: Path) -> dict:
    return json.loads((run_dir / "analyses" / "entity-bias.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def biased_run(tmp_path_factory) -> Path:
    return _run(tmp_path_factory.mktemp("biased"))


@pytest.fixture(scope="module")
def biased(biased_run) -> dict:
    return _analysis(biased_run)


@pytest.fixture(scope="module")
def augmented(tmp_path_factory) -> dict:
    return _analysis(_run(tmp_path_factory.mktemp("augmented"), augment="entity-swap", augment_copies=3))


def _row(result: dict, entity: str) -> dict:
    return next(r for r in result["entities"] if r["entity"] == entity)


def test_every_shipped_person_and_place_is_found_as_one_entity_of_its_group():
    for name in ("persons", "places"):
        with (LISTS / f"{name}.tsv").open(encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                found = find_entities(f"{row['name']}が会見を開いた")
                assert [(e.text, e.group) for e in found] == [(row["name"], row["group"])]


def test_gazetteer_wins_and_a_swap_touches_only_the_span():
    lists = load_entity_lists()
    text = "阪神の佐々木翔が外務省で会見"
    found = lists.entities(text)
    assert [(e.text, e.kind, e.group) for e in found] == [
        ("阪神", "組織", "球団"),
        ("佐々木翔", PERSON, PERSON),
        ("外務省", "組織", "省庁"),
    ]
    assert swap(text, found[1], "山田太郎") == "阪神の山田太郎が外務省で会見"
    assert mask_entities(text, lists) == "[組織]の[人名]が[組織]で会見"


def test_planted_entity_flips_and_the_identity_control_is_exactly_zero(biased):
    assert_planted_entity_flips(biased)


def test_the_plant_is_found_in_a_model_whose_embeddings_start_from_word_vectors(tmp_path):
    table = write_vector_table(tmp_path / "vectors.txt", [r["text"] for r in entity_rows()])
    run_dir = _run(tmp_path, init_vectors=str(table), embedding_lr_scale=1.0, tiny_pooling="mean")
    assert json.loads((run_dir / "model_info.json").read_text())["initialisation"]["word_vectors"]["initialised"] > 0
    assert_planted_entity_flips(_analysis(run_dir))


def assert_planted_entity_flips(biased: dict) -> None:
    assert _row(biased, BIASED)["flip_rate"]["rate"] >= 0.5
    assert _row(biased, BIASED)["pushes"] == "economy"
    identity = biased["identity_control"]
    assert identity["flip_rate"]["k"] == 0 and identity["max_abs_delta"] == 0.0
    assert biased["swaps"]["unk_share"] == 0.0
    assert biased["non_entity_baseline"]["n"] > 0
    flipped = biased["flipped_examples"]
    assert flipped and any(e["entity"] == BIASED for e in flipped)
    for e in flipped:
        assert e["before"]["label"] != e["after"]["label"]
        assert e["swapped"] == e["original"].replace(e["entity"], e["substitute"], 1)
    assert len(flipped) <= 10


def test_augmentation_at_least_halves_the_flip_rate_with_separate_intervals(biased, augmented):
    before, after = _row(biased, BIASED)["flip_rate"], _row(augmented, BIASED)["flip_rate"]
    assert after["rate"] <= before["rate"] / 2
    assert after["high"] < before["low"]
    assert augmented["mitigation"]["augment"] == "entity-swap"


def test_masked_run_trains_on_type_tokens_and_is_invariant_to_swaps_of_found_entities(biased_run, tmp_path):
    masked = _run(tmp_path, epochs=2, mask_entities=True)
    texts = [json.loads(line)["text"] for line in (masked / "predictions.jsonl").open(encoding="utf-8")]
    assert all("[人名]" in t and BIASED not in t for t in texts)
    assert "人名" in (masked / "model" / "vocab.txt").read_text(encoding="utf-8").split()
    comparison = compare_mitigations({"as given": biased_run, "masked": masked}, build_plugin_set())
    assert comparison["runs"]["masked"]["swaps"]["flip_rate"]["k"] == 0
    assert comparison["runs"]["as given"]["swaps"]["flip_rate"]["k"] > 0
    assert comparison["runs"]["masked"]["accuracy"]["n"] == comparison["runs"]["as given"]["accuracy"]["n"]
    capped = compare_mitigations(
        {"as given": biased_run, "masked": masked}, build_plugin_set(), {"entity_bias_max_texts": 5}
    )
    assert capped["n_texts"] == 5 < comparison["n_texts"]  # the recipe's --entity-bias-max-texts, as each run used
    assert (
        capped["runs"]["as given"]["swaps"]["flip_rate"]["n"]
        < comparison["runs"]["as given"]["swaps"]["flip_rate"]["n"]
    )


def test_report_shows_swaps_controls_and_entities(biased_run, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["report", str(biased_run)]) == 0
    out = capsys.readouterr().out
    for text in ("Entity swaps", "identity control", "non-entity word swaps", BIASED, "templates", "flipped"):
        assert text in out, text


def test_mikiwame_transform_data_hooks_chain_after_the_entity_steps():
    """An outside plugin's `mikiwame_transform_data` sees the result of the built-in masking step."""
    from dataclasses import replace as replaced

    from mikiwame.framework import hookimpl
    from mikiwame.framework.config import RunConfig
    from mikiwame.framework.runner import transform_data
    from mikiwame.framework.task import Example, TaskData

    class Exclaim:
        @hookimpl
        def mikiwame_transform_data(self, config, data):
            return TaskData(data.name, [replaced(e, text=e.text + "!") for e in data.examples], data.source)

    data = TaskData("t", [Example("1", f"{BIASED}が会見", "a", "train")], "t")
    plugins = build_plugin_set(extra=[("exclaim", Exclaim())])
    out = transform_data(plugins, RunConfig(options={"mask_entities": True}), data)
    assert [e.text for e in out.examples] == ["[人名]が会見!"]
    untouched = transform_data(build_plugin_set(), RunConfig(), data)
    assert untouched.examples == data.examples


def test_the_planted_entity_effect_is_a_fact(biased_run):
    """Findings (考察): the swaps flip more than the non-entity baseline, and the planted name is a fact."""
    findings = [f for f in saved_findings(biased_run) if f.source == "entity-bias"]
    assert_findings_rules(findings)
    facts = [f.claim["en"] for f in findings if f.kind == "fact"]
    assert any(f.startswith("Swapping entities flipped") for f in facts)
    assert any(f.startswith(f"Swapping 「{BIASED}」") for f in facts)
