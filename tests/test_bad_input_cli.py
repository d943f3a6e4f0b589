"""Bad input through the CLI: each case ends with exit status 2, one message naming the file, the line where
there is one, and the fix; no traceback; no run directory left behind."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import TINY, labelled_rows, run_recipe


def write_csv(path: Path, rows: list[tuple[str, ...]], header: tuple[str, ...] = ("text", "label")) -> Path:
    lines = [",".join(header)] + [",".join(row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def missing_file(tmp: Path) -> Path:
    return tmp / "nowhere.csv"


def empty_file(tmp: Path) -> Path:
    path = tmp / "empty.csv"
    path.write_bytes(b"")
    return path


def missing_column(tmp: Path) -> Path:
    return write_csv(tmp / "data.csv", labelled_rows(), header=("sentence", "label"))


def empty_text(tmp: Path) -> Path:
    rows = labelled_rows()
    rows[4] = ("  ", rows[4][1])
    return write_csv(tmp / "data.csv", rows)  # header is line 1, so row index 4 is line 6


def empty_label(tmp: Path) -> Path:
    rows = labelled_rows()
    rows[9] = (rows[9][0], "")
    return write_csv(tmp / "data.csv", rows)


def shift_jis(tmp: Path) -> Path:
    path = tmp / "data.csv"
    text = "text,label\n" + "".join(f"{t},{lab}\n" for t, lab in labelled_rows())
    path.write_bytes(text.encode("cp932"))
    return path


def binary(tmp: Path) -> Path:
    path = tmp / "data.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4)
    return path


def ragged(tmp: Path) -> Path:
    rows: list[tuple[str, ...]] = list(labelled_rows())
    rows[2] = (rows[2][0], "sports", "extra")
    return write_csv(tmp / "data.csv", rows)


def one_class(tmp: Path) -> Path:
    return write_csv(tmp / "data.csv", [(t, "sports") for t, _ in labelled_rows()])


def too_small_to_split(tmp: Path) -> Path:
    return write_csv(tmp / "data.csv", labelled_rows(per_label=3))


def unseen_label(tmp: Path) -> Path:
    rows = [(t, lab, "train") for t, lab in labelled_rows(per_label=6)]
    rows += [("新しい話題の記事です", "culture", "test"), ("試合の結果が出た", "sports", "validation")]
    return write_csv(tmp / "data.csv", rows, header=("text", "label", "split"))


def bad_split_value(tmp: Path) -> Path:
    rows = [(t, lab, "train") for t, lab in labelled_rows(per_label=6)]
    rows[3] = (rows[3][0], rows[3][1], "holdout")
    return write_csv(tmp / "data.csv", rows, header=("text", "label", "split"))


def header_only(tmp: Path) -> Path:
    return write_csv(tmp / "data.csv", [])


def bad_jsonl(tmp: Path) -> Path:
    path = tmp / "data.jsonl"
    lines = [json.dumps({"text": t, "label": lab}, ensure_ascii=False) for t, lab in labelled_rows()]
    lines[6] = '{"text": "壊れた行", "label": '
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def leakage(tmp: Path) -> Path:
    rows = [(t, lab, "train") for t, lab in labelled_rows(per_label=6)]
    rows += [(rows[0][0], rows[0][1], "test"), (rows[7][0], rows[7][1], "validation")]
    return write_csv(tmp / "data.csv", rows, header=("text", "label", "split"))


# (case, file writer, extra options, fragments the message must hold)
CASES: list[tuple[str, Callable[[Path], Path], list[str], list[str]]] = [
    ("missing file", missing_file, [], ["nowhere.csv does not exist", "--data", "Fix: check the path"]),
    ("empty file", empty_file, [], ["empty.csv is empty", "Fix:"]),
    ("header only", header_only, [], ["has a header but no rows", "Fix: add labelled rows"]),
    ("missing column", missing_column, [], ["column 'text' not found", "sentence, label", "--text-column"]),
    ("empty text", empty_text, [], ["data.csv:6", "empty text in column 'text'", "Fix: fill the text"]),
    ("empty label", empty_label, [], ["data.csv:11", "empty label in column 'label'", "Fix: fill the label"]),
    ("not UTF-8", shift_jis, [], ["not UTF-8", "Shift_JIS/CP932", "--encoding cp932", "iconv -f cp932"]),
    ("binary", binary, [], ["binary content", "Fix: give a CSV, TSV or JSONL"]),
    ("ragged row", ragged, [], ["data.csv:4", "row has 3 fields but the header has 2", "quote fields"]),
    ("one class", one_class, [], ["only one label ('sports')", "at least two", "Fix: check the label column"]),
    ("too small to split", too_small_to_split, [], ["9 examples of 3 labels are too few", "--split-column"]),
    ("train size too large", lambda tmp: write_csv(tmp / "d.csv", labelled_rows()), ["--train-size", "500"],
     ["--train-size 500 is larger than the training split", "Fix: use at most"]),
    ("train size below labels", lambda tmp: write_csv(tmp / "d.csv", labelled_rows()), ["--train-size", "2"],
     ["cannot hold one example of each of 3 labels", "Fix: use at least 3"]),
    ("unseen label", unseen_label, ["--split-column", "split"],
     ["data.csv:20", "label 'culture' appears in test but never in train", "Fix: add training examples"]),
    ("bad split value", bad_split_value, ["--split-column", "split"],
     ["data.csv:5", "'holdout' is not one of train, validation, test"]),
    ("bad JSON line", bad_jsonl, [], ["data.jsonl:7", "not valid JSON", "one JSON object per line"]),
    ("leakage with --strict", leakage, ["--split-column", "split", "--strict"],
     ["2 texts appear in more than one split", "leakage", "drop --strict"]),
    ("bad delimiter option", lambda tmp: write_csv(tmp / "d.csv", labelled_rows()), ["--delimiter", "::"],
     ["--delimiter '::' is not one character"]),
]  # fmt: skip


@pytest.mark.parametrize(("writer", "extra", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_clear_error(tmp_path, writer, extra, expected):
    data = writer(tmp_path)
    out = tmp_path / "runs"
    result = run_recipe("--task", "csv", "--data", str(data), *TINY, "--output-dir", str(out), *extra, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    message = result.stderr.strip()
    assert message.startswith("mikiwame: error:"), message
    for fragment in expected:
        assert fragment in message, f"{fragment!r} not in:\n{message}"
    assert not out.exists() or not any(out.iterdir()), f"left behind: {list(out.iterdir())}"


def test_bad_option_value_exits_2_without_traceback(tmp_path):
    result = run_recipe("--task", "csv", "--data", "x.csv", "--train-size", "1", cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "--train-size must be at least 2" in result.stderr


def test_missing_data_option_names_the_corpus_download(tmp_path):
    for task, expected in (("livedoor", "ldcc-20140209.tar.gz"), ("jrte-pn", "pn.tsv"), ("csv", "--data")):
        result = run_recipe("--task", task, "--model", "tfidf-lr", "--output-dir", str(tmp_path / "r"), cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        assert expected in result.stderr and "Fix:" in result.stderr
        assert "Traceback" not in result.stderr
