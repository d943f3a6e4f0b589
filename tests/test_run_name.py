"""`--name`: the run directory is OUTPUT_DIR/NAME (NAME-2 when taken, the same reservation as time stamps), the
name is saved in config.json and labels the run; a name that is not one visible folder name is refused."""

from __future__ import annotations

import json

import pytest

from mikiwame.framework.cli import main
from mikiwame.framework.config import RunConfig
from mikiwame.framework.errors import ConfigError
from mikiwame.framework.results import RunResults
from mikiwame.framework.runner import run

from .conftest import tiny_config


def test_a_named_run_is_its_folder_and_its_label_and_a_second_takes_the_next_suffix(tmp_path):
    first = run(tiny_config(tmp_path, name="レベル2", model="tfidf-lr", peft="auto"))
    second = run(tiny_config(tmp_path, name="レベル2", model="tfidf-lr", peft="auto"))
    assert (first.name, second.name) == ("レベル2", "レベル2-2") and first.parent == second.parent == tmp_path
    assert json.loads((second / "config.json").read_text(encoding="utf-8"))["name"] == "レベル2"
    assert RunResults.load(second).name == "レベル2"
    assert main(["report", str(second), "--format", "markdown", "--lang", "ja"]) == 0
    assert (second / "report.md").read_text(encoding="utf-8").splitlines()[0].endswith(": レベル2")
    unnamed = run(tiny_config(tmp_path, model="tfidf-lr", peft="auto"))
    assert unnamed.name.endswith("-test") and RunResults.load(unnamed).name == unnamed.name


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("../elsewhere", "path separator"),
        ("a\\b", "path separator"),
        (".hidden", "starts with a dot"),
        ("x" * 101, "more than 100"),
        ("  ", "is empty"),
        ("bell\x07", "control character"),
    ],
)
def test_a_name_that_is_not_one_visible_folder_name_is_refused(name, problem):
    with pytest.raises(ConfigError, match="--name") as err:
        RunConfig.of(name=name).validate()
    assert problem in str(err.value) and "Fix:" in str(err.value)
