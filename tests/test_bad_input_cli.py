"""Bad input through the CLI: each case ends with exit status 2, one message naming the file, the line where
there is one, and the fix; no traceback; no run directory left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import RECIPE, TINY, finished_runs, labelled_rows, run_recipe


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


def jsonl(tmp: Path, records: list[dict]) -> Path:
    path = tmp / "data.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def mixed_number_labels(tmp: Path) -> Path:
    records: list[dict] = [{"text": t, "label": i % 2} for i, (t, _) in enumerate(labelled_rows())]
    records[9]["label"] = 1.0
    return jsonl(tmp, records)


def nul_after_8kb(tmp: Path) -> Path:
    rows = labelled_rows(per_label=120)
    path = write_csv(tmp / "data.csv", rows)
    raw = path.read_bytes()
    cut = raw.index(b"\n", 9000) + 1
    path.write_bytes(raw[:cut] + b"\x00" + raw[cut:])
    return path


# (case, file writer, extra options, fragments the message must hold)
CASES: list[tuple[str, Callable[[Path], Path], list[str], list[str]]] = [
    ("missing file", missing_file, [], ["nowhere.csv does not exist", "--data", "Fix: check the path"]),
    ("empty file", empty_file, [], ["empty.csv is empty", "Fix:"]),
    ("header only", header_only, [], ["has a header but no rows", "Fix: add labelled rows"]),
    ("missing column", missing_column, [], ["column 'text' not found", "sentence, label", "--csv-text-column"]),
    ("empty text", empty_text, [], ["data.csv:6", "empty text in column 'text'", "Fix: fill the text"]),
    ("empty label", empty_label, [], ["data.csv:11", "empty label in column 'label'", "Fix: fill the label"]),
    ("not UTF-8", shift_jis, [], ["not UTF-8", "Shift_JIS/CP932", "--csv-encoding cp932", "iconv -f cp932"]),
    ("binary", binary, [], ["binary content", "Fix: give a CSV, TSV or JSONL"]),
    ("ragged row", ragged, [], ["data.csv:4", "row has 3 fields but the header has 2", "quote fields"]),
    ("one class", one_class, [], ["only one label ('sports')", "at least two", "Fix: check the label column"]),
    ("too small to split", too_small_to_split, [], ["9 examples of 3 labels are too few", "--csv-split-column"]),
    ("train size too large", lambda tmp: write_csv(tmp / "d.csv", labelled_rows()), ["--train-size", "500"],
     ["--train-size 500 is larger than the training split", "Fix: use at most"]),
    ("train size below labels", lambda tmp: write_csv(tmp / "d.csv", labelled_rows()), ["--train-size", "2"],
     ["cannot hold one example of each of 3 labels", "Fix: use at least 3"]),
    ("unseen label", unseen_label, ["--csv-split-column", "split"],
     ["data.csv:20", "label 'culture' appears in test but never in train", "Fix: add training examples"]),
    ("bad split value", bad_split_value, ["--csv-split-column", "split"],
     ["data.csv:5", "'holdout' is not one of train, validation, test"]),
    ("bad JSON line", bad_jsonl, [], ["data.jsonl:7", "not valid JSON", "one JSON object per line"]),
    ("leakage with --strict", leakage, ["--csv-split-column", "split", "--strict"],
     ["2 texts appear in more than one split", "leakage", "drop --strict"]),
    ("bad delimiter option", lambda tmp: write_csv(tmp / "d.csv", labelled_rows()), ["--csv-delimiter", "::"],
     ["--csv-delimiter '::' is not one character"]),
    ("JSONL labels 1 and 1.0", mixed_number_labels, [],
     ["data.jsonl:10", "mixes JSON integers and decimals", "1 and 1.0 would be two different labels"]),
    ("NUL byte after 8 KB", nul_after_8kb, [], ["binary content (a NUL byte at offset", "data.csv:"]),
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


# ---------------------------------------------------------------- options, configs, interrupted and diverged runs
def config_file(tmp: Path, content: bytes | str | None) -> Path:
    """None: a directory where the config file should be."""
    path = tmp / "config.json"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


OPTION_CASES: list[tuple[str, list[str], list[str]]] = [
    ("lr nan", ["--lr", "nan"], ["--lr must be a finite number, got nan"]),
    ("lr inf", ["--lr", "inf"], ["--lr must be a finite number, got inf"]),
    ("max-grad-norm nan", ["--max-grad-norm", "nan"], ["--max-grad-norm must be a finite number"]),
    ("lora-r 0", ["--peft", "lora", "--lora-r", "0"], ["--lora-r must be at least 1, got 0"]),
    ("dropout 1.5", ["--dropout", "1.5"], ["--dropout is a probability", "[0, 1)", "1.5"]),
    ("heads do not divide hidden", ["--tiny-hidden", "30", "--tiny-heads", "4"],
     ["--tiny-hidden 30 is not divisible by --tiny-heads 4", "Fix: use --tiny-heads 3"]),
    ("max-length 1", ["--max-length", "1"], ["--max-length 1 leaves no room for text", "Fix: use --max-length 3"]),
]  # fmt: skip


@pytest.mark.parametrize(("extra", "expected"), [c[1:] for c in OPTION_CASES], ids=[c[0] for c in OPTION_CASES])
def test_bad_option_is_one_clear_error(tmp_path, extra, expected):
    out = tmp_path / "runs"
    result = run_recipe(*TINY, "--output-dir", str(out), *extra, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and result.stderr.startswith("mikiwame: error:")
    for fragment in expected:
        assert fragment in result.stderr, f"{fragment!r} not in:\n{result.stderr}"
    assert not out.exists() or not any(out.iterdir())


CONFIG_CASES: list[tuple[str, bytes | str | None, list[str]]] = [
    ("a list", "[1, 2]", ["a config is a JSON object of option names, not a list"]),
    ("a string number", '{"epochs": "3"}',
     ["'epochs' is \"3\", but must be a whole number", "Fix: write it like its default: 5"]),
    ("binary", b"\x89PNG\r\n\x1a\n\xff\xfe\x00", ["is not UTF-8 text"]),
    ("a directory", None, ["is a directory"]),
]  # fmt: skip


@pytest.mark.parametrize(("content", "expected"), [c[1:] for c in CONFIG_CASES], ids=[c[0] for c in CONFIG_CASES])
def test_bad_config_file_is_one_clear_error(tmp_path, content, expected):
    result = run_recipe("--config", str(config_file(tmp_path, content)), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in expected:
        assert fragment in result.stderr, f"{fragment!r} not in:\n{result.stderr}"


def test_max_length_beyond_the_models_positions_is_refused(tmp_path):
    from transformers import BertConfig, BertForSequenceClassification

    from .tiny_lms import _tokenizer

    model_dir = tmp_path / "short-model"
    sentences = [t for t, _ in labelled_rows()]
    config = BertConfig(
        vocab_size=len(_tokenizer(sentences).vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64,
    )  # fmt: skip
    BertForSequenceClassification(config).save_pretrained(model_dir)
    _tokenizer(sentences).save_pretrained(model_dir)
    result = run_recipe("--model", str(model_dir), "--max-length", "100", "--output-dir", str(tmp_path / "r"))
    assert result.returncode == 2, result.stderr
    assert "--max-length 100 is longer than the 64 positions" in result.stderr and "Traceback" not in result.stderr


def killed_run(tmp: Path, sig: int, after_step: int, *extra: str) -> tuple[subprocess.Popen, Path]:
    """Start a run that checkpoints every step and send it `sig` once step `after_step` is saved."""
    out = tmp / "runs"
    args = [sys.executable, str(RECIPE), *TINY, *KILLED, "--output-dir", str(out), *extra]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    # A shell's background job (`pytest &`, nohup) starts with SIGINT ignored, and Python then leaves it ignored
    # in the child too; the run must see Ctrl-C as a terminal would deliver it.
    proc = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 300
    while not list(out.glob(f".*.partial/checkpoints/step-{after_step:06d}")):
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(sig)
    proc.wait(timeout=120)
    return proc, out


# 80 examples in batches of 4: 20 steps an epoch, a checkpoint after each.
KILLED = ["--epochs", "2", "--train-size", "80", "--batch-size", "4", "--save-every", "1", "--keep-checkpoints", "4"]


@pytest.mark.slow
def test_resume_after_sigkill_is_bit_exact_and_checkpoints_are_never_half_written(tmp_path):
    proc, out = killed_run(tmp_path, signal.SIGKILL, 25)
    assert proc.returncode == -signal.SIGKILL
    (partial,) = out.glob(".*.partial")
    steps = sorted((partial / "checkpoints").glob("step-*"))
    assert steps and all((s / "state.json").is_file() for s in steps), "a visible checkpoint must be complete"
    one_thread = {"OMP_NUM_THREADS": "1"}  # as the killed run: another thread count sums in another order
    resumed = run_recipe(
        "--resume", str(partial / "checkpoints"), "--output-dir", str(tmp_path / "resumed"), env=one_thread
    )
    assert resumed.returncode == 0, resumed.stderr
    straight = run_recipe(*TINY, *KILLED, "--output-dir", str(tmp_path / "straight"), env=one_thread)
    assert straight.returncode == 0, straight.stderr
    (a,), (b,) = finished_runs(tmp_path / "straight"), finished_runs(tmp_path / "resumed")
    from .test_engine import assert_same_run

    assert_same_run(a, b)


@pytest.mark.slow
def test_ctrl_c_exits_130_without_traceback_and_keeps_the_partial_run(tmp_path):
    proc, out = killed_run(tmp_path, signal.SIGINT, 3)
    stderr = proc.stderr.read()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    assert "partial run kept at" in stderr and "--resume" in stderr
    assert list(out.glob(".*.partial")) and not finished_runs(out)


def test_a_diverging_loss_stops_with_one_message_and_leaves_the_run_partial(tmp_path):
    out = tmp_path / "runs"
    result = run_recipe(*TINY, "--lr", "1e30", "--output-dir", str(out), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "training diverged: the loss is nan at optimizer step" in result.stderr
    assert "last finite loss was" in result.stderr and "Fix: lower --lr" in result.stderr
    assert "partial run kept at" in result.stderr
    assert not finished_runs(out) and list(out.glob(".*.partial"))
    for path in out.rglob("*.json"):
        json.loads(path.read_text(), parse_constant=lambda c, p=path: pytest.fail(f"{p} holds {c}"))


def test_resume_with_conflicting_options_is_refused(tmp_path):
    first = run_recipe(*TINY, "--save-every", "2", "--output-dir", str(tmp_path / "runs"))
    assert first.returncode == 0, first.stderr
    (run_dir,) = finished_runs(tmp_path / "runs")
    step = sorted((run_dir / "checkpoints").glob("step-*"))[-1]
    data = write_csv(tmp_path / "d.csv", labelled_rows())
    result = run_recipe("--task", "csv", "--data", str(data), "--epochs", "3", "--resume", str(step), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "options that differ from the run being resumed" in result.stderr
    assert "--task 'csv' (the checkpoint's run: 'headlines')" in result.stderr and "--epochs 3" in result.stderr


def test_a_jsonl_string_with_u2028_is_one_text(tmp_path):
    records = [{"text": t, "label": lab} for t, lab in labelled_rows()]
    records[0]["text"] = "行分離子\u2028の後も同じテキスト"
    out = tmp_path / "runs"
    result = run_recipe("--task", "csv", "--data", str(jsonl(tmp_path, records)), *TINY, "--output-dir", str(out))
    assert result.returncode == 0, result.stderr
    (run_dir,) = finished_runs(out)
    texts = [json.loads(line)["text"] for line in (run_dir / "predictions.jsonl").read_text().split("\n") if line]
    assert "行分離子\u2028の後も同じテキスト" in texts


@pytest.fixture(scope="module")
def markup_run(tmp_path_factory) -> Path:
    """A run whose data and labels hold rich markup, analysed for errors as part of the run."""
    tmp = tmp_path_factory.mktemp("markup")
    rows = [(f"[/bold]{t}[red]", f"[b]{lab}") for t, lab in labelled_rows()]
    data = write_csv(tmp / "data.csv", rows)
    out = tmp / "runs"
    result = run_recipe("--task", "csv", "--data", str(data), *TINY, "--analyze", "errors", "--output-dir", str(out))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "[/bold]" in result.stdout, "data text is shown as written, never parsed as markup"
    (run_dir,) = finished_runs(out)
    return run_dir


def test_rich_markup_in_data_is_shown_not_parsed(markup_run):
    from .conftest import run_cli

    result = run_cli("predict", str(markup_run), "[/bold]", "[red]赤[/red]")
    assert result.returncode == 0, result.stderr
    assert "[/bold]" in result.stdout and "[red]赤[/red]" in result.stdout and "[b]" in result.stdout
    report = run_cli("report", str(markup_run))
    assert report.returncode == 0, report.stderr
    assert "[b]sports" in report.stdout


@pytest.mark.parametrize(
    ("command", "damaged", "expected"),
    [
        ("report", "metrics.json", ["metrics.json:", "not valid JSON", "is damaged"]),
        ("analyze", "predictions.jsonl", ["predictions.jsonl:3", "line 3 is not valid JSON"]),
    ],
)
def test_a_damaged_run_file_is_one_clear_error(markup_run, tmp_path, command, damaged, expected):
    import shutil

    from .conftest import run_cli

    received = tmp_path / markup_run.name
    shutil.copytree(markup_run, received)
    path = received / damaged
    lines = path.read_text().split("\n")
    lines[2] = lines[2][: len(lines[2]) // 2]
    path.write_text("\n".join(lines))
    result = run_cli(command, str(received), *(["errors"] if command == "analyze" else []))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in expected:
        assert fragment in result.stderr, f"{fragment!r} not in:\n{result.stderr}"
