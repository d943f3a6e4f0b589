"""Tags of shapes no list names are found whole: one shape of each class (a bracket pair, a symbol run, a suffix
after a separator, a Latin word) planted into one label each of the bundled headlines, anti-correlated in the
test split, is flagged as the whole tag, not as the word inside it; the control plants the same tags into every
label alike, and nothing touching them is flagged."""

from __future__ import annotations

import json
import random
import unicodedata
from pathlib import Path

import pytest

from mikiwame.framework.runner import run
from mikiwame.framework.task import Example
from mikiwame.plugins.analyzers.shortcut_units import grow_tags

from ..conftest import benchmark_module
from .conftest import read_headlines, tiny_config, write_tsv

shapes = benchmark_module("planted_shapes")
BY_NAME = {s.name: s for s in shapes.SHAPES}
PLANTS = {  # label -> one shape of each class
    "economy": BY_NAME["tortoise-shell"],  # 〔特報〕: a bracket pair the old list did not name
    "sports": BY_NAME["star-run"],  # ★★★: symbols only, no word inside
    "technology": BY_NAME["source-bar"],  # ｜ABC通信: a separator and a source name at the end
    "politics": BY_NAME["latin-colon"],  # NEWS: , Latin with a space after it
}


def _examples() -> list[Example]:
    return [Example(str(i), r["text"], r["label"], r["split"]) for i, r in enumerate(read_headlines())]


def _write(examples: list[Example], path: Path) -> Path:
    rows = [{"text": e.text, "label": e.label, "split": e.split} for e in examples]
    return write_tsv(rows, path)


def _analyse(root: Path, examples: list[Example]) -> dict:
    root.mkdir(parents=True)
    data = _write(examples, root / "data.tsv")
    config = tiny_config(
        root / "runs",
        task="csv",
        data=str(data),
        epochs=6,
        train_size=None,
        lr=3e-3,
        analyze=["shortcuts"],
        options={"split_column": "split"},
    )
    return json.loads((run(config) / "analyses" / "shortcuts.json").read_text(encoding="utf-8"))


def _bare(unit: str) -> str:
    return "".join(unicodedata.normalize("NFKC", unit).split())


def test_every_planted_shape_grows_whole_from_the_training_data():
    """The units alone, no model: each tag is one grown unit, spaces inside it kept, none cut short or run on."""
    examples = shapes.plant(_examples(), PLANTS, purity=0.9, test="anti", seed=1)
    train = [e for e in examples if e.split == "train"]
    tags = grow_tags([e.text for e in train], [e.label for e in train])
    for shape in PLANTS.values():
        assert shape.unit in tags, (shape.tag, [t for t in tags if _bare(t) in _bare(shape.unit) or shape.unit in t])


@pytest.mark.slow
def test_a_tag_of_each_shape_class_is_flagged_whole_and_the_control_flags_none(tmp_path):
    planted = _analyse(tmp_path / "planted", shapes.plant(_examples(), PLANTS, purity=0.9, test="anti", seed=1))
    flagged = {(_bare(f["unit"]), f["label"]) for f in planted["flagged"]}
    for label, shape in PLANTS.items():
        assert (_bare(shape.unit), label) in flagged, (shape.tag, planted["flagged"])
        fragments = [u for u, lab in flagged if lab == label and u != _bare(shape.unit) and u in _bare(shape.unit)]
        assert not fragments, f"only the whole tag, not a piece of it: {fragments}"
    control = _analyse(tmp_path / "control", _unrelated_to_labels(_examples()))
    plants = {_bare(s.unit) for s in PLANTS.values()}
    touching = [
        f["unit"] for f in control["flagged"] if any(_bare(f["unit"]) in p or p in _bare(f["unit"]) for p in plants)
    ]
    assert touching == [], control["flagged"]


def _unrelated_to_labels(examples: list[Example], share: float = 0.3) -> list[Example]:
    """The control: each tag put into texts of every label and split alike, so it carries no label."""
    rng = random.Random(1)
    tags = list(PLANTS.values())
    return [
        Example(e.id, rng.choice(tags).plant(e.text), e.label, e.split) if rng.random() < share else e for e in examples
    ]
