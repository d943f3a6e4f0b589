"""Hostile values in a received run's JSON and in options: each is one message naming the file or option, never a
traceback. One tiny finished run per module, copied per case."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from mikiwame.framework.cli import main
from mikiwame.framework.recipe import parse_config
from mikiwame.framework.runner import run

from ..conftest import tiny_config

BAD = ["x", -1, None, [], True, "[/bold]"]
KEYS = [
    ("metrics.json", "after"),
    ("metrics.json", "before"),
    ("metrics.json", "labels"),
    ("metrics.json", "best_epoch"),
    ("model_info.json", "saved_bytes"),
    ("data_checks.json", "label_counts"),
    ("data_checks.json", "duplicates"),
    ("data_checks.json", "truncation"),
]
ACCEPTED = {("best_epoch", None), ("saved_bytes", None), ("labels", "[]")}  # valid values, not hostile ones
CASES = [(f, k, v) for f, k in KEYS for v in BAD if (k, v if v != [] else "[]") not in ACCEPTED]


@pytest.fixture(scope="module")
def received(tmp_path_factory):
    return run(tiny_config(tmp_path_factory.mktemp("hostile"), epochs=1, train_size=30))


def refused(argv, capsys) -> str:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2, err
    assert err.startswith("mikiwame: error:") and "Traceback" not in err
    return err


@pytest.mark.parametrize(("name", "key", "value"), CASES, ids=[f"{f}-{k}-{v!r}" for f, k, v in CASES])
def test_a_wrong_typed_value_is_one_message_naming_file_and_key(received, tmp_path, capsys, name, key, value):
    copy = shutil.copytree(received, tmp_path / received.name)
    data = json.loads((copy / name).read_text())
    data[key] = value
    (copy / name).write_text(json.dumps(data))
    err = refused(["report", str(copy)], capsys)
    assert name in err and key in err


def test_a_fifo_in_place_of_a_file_is_refused_not_waited_on(received, tmp_path, capsys):
    copy = shutil.copytree(received, tmp_path / received.name)
    (copy / "model_info.json").unlink()
    os.mkfifo(copy / "model_info.json")
    assert "not a regular file" in refused(["report", str(copy)], capsys)


def test_nan_in_a_received_file_is_refused(received, tmp_path, capsys):
    copy = shutil.copytree(received, tmp_path / received.name)
    text = (copy / "metrics.json").read_text().replace('"optimizer_steps": ', '"optimizer_steps": NaN, "x": ', 1)
    (copy / "metrics.json").write_text(text)
    assert "NaN is not a JSON number" in refused(["report", str(copy), "--format", "json"], capsys)


OPTIONS = [
    (["--seed", "-1"], "--seed must be in [0, 2**32)"),
    (["--patience", "-1"], "--patience must be 0"),
    (["--weight-decay", "-5"], "--weight-decay must be 0 or more"),
    (["--eval-batch-size", "1000000000000"], "--eval-batch-size 1000000000000 is more than"),
    (["--max-length", "1000000000"], "--max-length 1000000000 is more than"),
    (["--peft", "lora", "--lora-alpha", "-16"], "--lora-alpha must be at least 1"),
    (["--peft", "lora", "--lora-targets", ","], "--lora-targets names no module"),
]


@pytest.mark.parametrize(("argv", "expected"), OPTIONS, ids=[" ".join(a) for a, _ in OPTIONS])
def test_an_out_of_range_option_is_refused_at_parse_time(argv, expected):
    from mikiwame.framework.config import RunConfig
    from mikiwame.framework.errors import ConfigError

    with pytest.raises(ConfigError, match=None) as err:
        parse_config("test", "test", RunConfig(), ["--model", "tiny", *argv])
    assert expected in str(err.value)
