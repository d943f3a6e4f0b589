"""Texts of a few MB, which crash MeCab with SIGSEGV, are cut before it sees them (framework/limits.py); CSV fields
of any size are read; a lone surrogate escape in JSONL is one message naming the file and line."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mikiwame.framework.cli import main
from mikiwame.framework.errors import DataError
from mikiwame.framework.limits import MAX_TEXT_CHARS
from mikiwame.framework.results import RunResults
from mikiwame.framework.runner import run
from mikiwame.framework.tables import read_rows

from ..conftest import labelled_rows, tiny_config

HUGE = "あ" * 1_000_000  # 3 MB in UTF-8: the smallest text seen to crash MeCab (docs/reliability.md)


def write_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def run_with_a_huge_text(tmp_path_factory) -> Path:
    """A tiny run on a CSV whose line 2 holds a 3 MB text."""
    tmp = tmp_path_factory.mktemp("huge")
    data = write_csv(tmp / "data.csv", [(HUGE, "sports"), *labelled_rows(8)])
    return run(tiny_config(tmp / "runs", task="csv", data=str(data), train_size=None, epochs=1))


def test_the_planted_text_crashes_mecab_when_not_cut():
    """The control: the same text given to MeCab directly kills the process, so the runs below mean something."""
    code = "import fugashi, unidic_lite; fugashi.Tagger(f'-d {unidic_lite.DICDIR}')('あ' * 1_000_000)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=300).returncode < 0


def test_a_multi_mb_text_in_training_data_is_cut_with_a_warning_naming_its_line(run_with_a_huge_text):
    texts = [r["text"] for r in RunResults.load(run_with_a_huge_text).predictions()]
    assert max(len(t) for t in texts) == MAX_TEXT_CHARS
    notices = json.loads((run_with_a_huge_text / "metrics.json").read_text())["notices"]
    (cut,) = [n["text"] for n in notices if "data.csv:2" in n["text"]]
    assert "(1,000,000 characters)" in cut and f"{MAX_TEXT_CHARS:,}" in cut


def test_predict_cuts_a_multi_mb_argument_and_file_line(run_with_a_huge_text, tmp_path, capsys):
    run_dir = run_with_a_huge_text
    texts = tmp_path / "texts.txt"
    texts.write_text("選手が試合で勝利した\n\n" + HUGE + "\n", encoding="utf-8")
    assert main(["predict", str(run_dir), "短い", "--file", str(texts), "--format", "jsonl"]) == 0
    captured = capsys.readouterr()
    assert f"{texts}:3 (1,000,000 characters)" in captured.err and "text argument" not in captured.err
    lengths = [len(json.loads(line)["text"]) for line in captured.out.splitlines()]
    assert lengths == [2, 10, MAX_TEXT_CHARS]


def test_analyze_refuses_a_received_multi_mb_text_in_one_message(run_with_a_huge_text, tmp_path, capsys):
    run_dir = run_with_a_huge_text
    copy = shutil.copytree(run_dir, tmp_path / run_dir.name)
    rows = [json.loads(line) for line in (copy / "predictions.jsonl").read_text().splitlines()]
    rows[0]["text"] = HUGE
    (copy / "predictions.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    with pytest.raises(SystemExit) as exit_:
        main(["analyze", str(copy), "token-stats"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "Traceback" not in err
    assert "predictions.jsonl" in err and "row 1" in err and "1,000,000 characters" in err


def test_a_csv_field_over_128_kib_is_read(tmp_path):
    long = "株" * 200_000  # 600 KB: over the csv module's default field limit of 128 KiB
    _, rows = read_rows(write_csv(tmp_path / "long.csv", [(long, "economy"), ("短い", "sports")]))
    assert [r.values["text"] for r in rows] == [long, "短い"]


@pytest.mark.parametrize("line", ['{"text": "x\\ud800y", "label": "a"}', '{"text": "x", "\\udfff": "a"}'])
def test_a_lone_surrogate_in_jsonl_is_one_message_naming_file_and_line(tmp_path, line):
    path = tmp_path / "data.jsonl"
    path.write_text('{"text": "ok \\ud83d\\ude00", "label": "b"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(DataError) as err:
        read_rows(path)
    assert f"{path}:2" in str(err.value) and "surrogate" in str(err.value)
    path.write_text('{"text": "ok \\ud83d\\ude00", "label": "b"}\n', encoding="utf-8")  # a whole pair is a character
    assert read_rows(path)[1][0].values["text"] == "ok 😀"


def test_a_command_line_text_that_is_not_utf8_is_one_message(run_with_a_huge_text, capsys):
    """Bytes that are not UTF-8 on the command line reach Python as lone surrogates (surrogateescape)."""
    with pytest.raises(SystemExit) as exit_:
        main(["predict", str(run_with_a_huge_text), "短い", "ab\udcffc"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "Traceback" not in err and "text argument 2 is not valid UTF-8" in err
