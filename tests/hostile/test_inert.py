"""Inert by construction: hostile strings in a received run directory (labels, texts, run names, values in its
JSON) and on the command line reach the terminal and report.html only as visible text. Each case plants one
string and checks its command's whole output: no raw control character, no live `<script>` or injected tag, rich
markup shown literally, no traceback. Before `framework/inert.py` these gave MarkupError tracebacks, "xy" for
`x[red]y`, a raw `<script>` from rich's link export, and ESC sequences that retitle or clear the terminal."""

from __future__ import annotations

import html
import io
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from rich.console import Group
from rich.control import strip_control_codes
from rich.style import Style
from rich.table import Table
from rich.text import Text

from mikiwame.framework import hookimpl, inert
from mikiwame.framework.cli import main
from mikiwame.framework.html import highlighted
from mikiwame.framework.plugins import build_plugin_set
from mikiwame.framework.results import ReportSection, RunResults
from mikiwame.framework.runner import collect_sections
from mikiwame.plugins.reporters.terminal import TerminalReporter

#: one hostile string per kind of attack on a terminal or a page
HOSTILE = {
    "script": "<script>alert(1)</script>",
    "link-markup": '[link="><script>alert(1)</script>"]x[/link]',
    "closing-tag": "x[/bold]y",
    "colour-tag": "x[red]y",
    "emoji-code": "x:skull:y",
    "window-title": "\x1b]0;owned\x07",
    "screen-clear": "\x1b[2J\x1b[H",
    "osc8-link": "\x1b]8;;http://evil.example\x1b\\click\x1b]8;;\x1b\\",
    "c1-csi": "x\x9b31my",
    "bidi-override": "abc\u202edcba",
    "backspace-cr-del": "ok\x08\x08\rno\x7f",
    "html-attribute": '"><img src=x onerror=alert(1)>',
}
#: strings that can be a folder name (no "/")
RUN_NAMES = {k: v for k, v in HOSTILE.items() if "/" not in v}
#: raw control characters a terminal acts on (tab and newline are layout), and bidirectional overrides
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
LABEL = "economy"  # a label of the bundled headlines, replaced by the hostile string everywhere in the run


def replaced(value: Any, new: str) -> Any:
    if isinstance(value, str):
        return value.replace(LABEL, new)
    if isinstance(value, list):
        return [replaced(v, new) for v in value]
    if isinstance(value, dict):
        return {replaced(k, new): replaced(v, new) for k, v in value.items()}
    return value


def rewrite_json(path: Path, change: Any) -> None:
    path.write_text(json.dumps(change(json.loads(path.read_text(encoding="utf-8"))), ensure_ascii=False), "utf-8")


def received_run(finished_run: Path, where: Path, label: str | None = None, name: str = "run") -> Path:
    """A copy of a finished run as someone might send it: `label` in place of one label in every file that
    holds labels (and as the first prediction's text)."""
    run = Path(shutil.copytree(finished_run, where / name, ignore=shutil.ignore_patterns("checkpoints")))
    if label is not None:
        for relative in ("metrics.json", "data_checks.json", "model_info.json", "model/peft.json", "model/config.json"):
            rewrite_json(run / relative, lambda data: replaced(data, label))
        rows = [json.loads(line) for line in (run / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]
        rows[0]["text"] = label
        lines = [json.dumps(replaced(r, label), ensure_ascii=False) for r in rows]
        (run / "predictions.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return run


def command(capsys, *args: str) -> tuple[int, str, str]:
    try:
        status = main(list(args))
    except SystemExit as stop:
        status = int(stop.code or 0)
    out, err = capsys.readouterr()
    return status, out, err


def assert_terminal_inert(out: str, planted: str, shown: str | None = None) -> None:
    """`shown`: how the planted string appears, when not as `inert.visible(planted)`."""
    assert "Traceback" not in out
    assert not RAW_CONTROL.search(out), RAW_CONTROL.search(out)
    assert (shown or inert.visible(planted)) in out  # shown, literally: markup not parsed, controls as symbols


def assert_page_inert(page: str, planted: str, shown: str | None = None) -> None:
    assert page.lower().count("<script") == 1  # the page's own filter script, nothing planted
    assert "<img src=x" not in page and not re.search(r'<a href="(?!#section-)', page)  # figures and contents only
    assert not RAW_CONTROL.search(page)
    assert html.escape(shown or inert.visible(planted), quote=True) in page


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # no hostile label is folded over two lines of a table


@pytest.mark.parametrize("planted", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_received_label_reaches_the_terminal_report_inert(finished_run, tmp_path, capsys, planted):
    run = received_run(finished_run, tmp_path, planted)
    status, out, err = command(capsys, "report", str(run))
    assert status == 0, err
    assert_terminal_inert(out, planted)


@pytest.mark.parametrize("planted", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_received_label_reaches_report_html_inert(finished_run, tmp_path, capsys, planted):
    run = received_run(finished_run, tmp_path, planted)
    status, _, err = command(capsys, "report", str(run), "--format", "html")
    assert status == 0, err
    assert_page_inert((run / "report.html").read_text(encoding="utf-8"), planted)


@pytest.mark.parametrize("planted", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_received_label_stays_data_in_the_json_report(finished_run, tmp_path, capsys, planted):
    run = received_run(finished_run, tmp_path, planted)
    status, out, err = command(capsys, "report", str(run), "--format", "json")
    assert status == 0, err
    assert not RAW_CONTROL.search(out)  # C1 controls and bidi overrides as \u escapes
    assert planted in json.loads(out)["metrics"]["labels"]  # the data itself unchanged


@pytest.mark.parametrize("planted", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_received_best_epoch_is_refused_in_one_inert_message(finished_run, tmp_path, capsys, planted):
    """best_epoch must be a whole number (the validation layer): the hostile string is named, not obeyed."""
    run = received_run(finished_run, tmp_path)
    rewrite_json(run / "metrics.json", lambda m: {**m, "best_epoch": planted, "stopped_early": True})
    status, out, err = command(capsys, "report", str(run))
    assert status == 2 and "metrics.json" in err and "best_epoch" in err and "Traceback" not in err, err
    assert not RAW_CONTROL.search(err)


@pytest.mark.parametrize("planted", RUN_NAMES.values(), ids=RUN_NAMES.keys())
def test_a_run_directory_name_is_shown_literally(finished_run, tmp_path, capsys, planted):
    run = received_run(finished_run, tmp_path, name=planted)
    status, out, err = command(capsys, "report", str(run))
    assert status == 0, err
    assert_terminal_inert(out, planted)
    status, out, err = command(capsys, "report", str(run), "--format", "html")
    assert status == 0, err
    assert not RAW_CONTROL.search(out)
    assert_page_inert((run / "report.html").read_text(encoding="utf-8"), planted)


@pytest.mark.parametrize("planted", RUN_NAMES.values(), ids=RUN_NAMES.keys())
def test_an_error_naming_a_hostile_path_is_one_inert_message(tmp_path, capsys, planted):
    status, out, err = command(capsys, "report", str(tmp_path / planted))
    assert status == 2 and out == ""
    assert err.startswith("mikiwame: error:") and "does not exist" in err
    assert not RAW_CONTROL.search(err) and inert.visible(planted) in err


@pytest.fixture(scope="module")
def hostile_label_run(finished_run, tmp_path_factory) -> Path:
    """One received run whose first label is every hostile string at once, for `predict`."""
    return received_run(finished_run, tmp_path_factory.mktemp("hostile"), "".join(HOSTILE.values()))


@pytest.mark.parametrize("planted", HOSTILE.values(), ids=HOSTILE.keys())
def test_predict_shows_hostile_texts_and_labels_inert(hostile_label_run, capsys, planted):
    status, out, err = command(capsys, "predict", str(hostile_label_run), planted, "--device", "cpu")
    assert status == 0, err
    assert_terminal_inert(out, planted)
    assert_terminal_inert(out, "".join(HOSTILE.values()))
    status, out, err = command(capsys, "predict", str(hostile_label_run), planted, "--format", "jsonl")
    assert status == 0, err
    assert not RAW_CONTROL.search(out)
    assert json.loads(out)["text"] == planted  # jsonl keeps the data exact


class OutsideSections:
    """A plugin whose section brings only a rich renderable built carelessly from data: a label as a plain
    string cell (parsed as markup by a plain rich Console) and as a link target of its own style."""

    def __init__(self, label: str) -> None:
        self.label = label

    @hookimpl
    def mikiwame_report_sections(self, results):
        def renderable():
            table = Table(title=self.label)
            table.add_column(self.label)
            table.add_row(self.label)
            return Group(table, Text("more", style=Style(link=self.label)))

        return [ReportSection("outside", "Outside", 95, {}, renderable)]


@pytest.mark.parametrize("planted", HOSTILE.values(), ids=HOSTILE.keys())
def test_an_outside_plugins_rich_section_is_inert_in_the_page_and_the_terminal(finished_run, tmp_path, planted):
    plugins = build_plugin_set([("outside", OutsideSections(planted))])
    results = RunResults.load(received_run(finished_run, tmp_path))
    sections = collect_sections(plugins, results)
    page = plugins.reporters.get("html").render(results, sections).read_text(encoding="utf-8")
    shown = inert.visible(strip_control_codes(planted))  # rich drops BEL, BS, VT, FF and CR from a plain str
    assert_page_inert(page, planted, shown)
    terminal = io.StringIO()
    TerminalReporter(inert.console(file=terminal, width=400)).render(results, sections)
    assert_terminal_inert(terminal.getvalue(), planted, shown)


def test_a_plain_web_link_survives_in_the_page():
    """The control: a link that is only a web address is kept, escaped."""
    page = inert.rich_html(Text("docs", style=Style(link="https://example.org/a?b=1&c=2")), 80)
    assert '<a href="https://example.org/a?b=1&amp;c=2">docs</a>' in page


def test_report_never_writes_through_a_symlinked_newest_run(finished_run, tmp_path, capsys):
    elsewhere = received_run(finished_run, tmp_path, name="elsewhere")
    runs = tmp_path / "runs"
    own = received_run(finished_run, runs, name="20261201-000000-own")
    (runs / "20991231-000000-link").symlink_to(elsewhere, target_is_directory=True)
    (elsewhere / "metrics.json").touch()  # the link's target is the newest
    status, _, err = command(capsys, "report", str(runs), "--format", "html")
    assert status == 0, err
    assert (own / "report.html").is_file() and not (elsewhere / "report.html").exists()


@pytest.mark.parametrize("span", [(0, 10**12), (-(10**12), 2), (3, 10**15)], ids=["huge-end", "negative", "beyond"])
def test_a_huge_word_span_is_clipped_to_its_text(span):
    page = highlighted("東京で試合", [[span[0], span[1], 0.5]], [span])
    assert page.count("東") + page.count("合") == 2  # every character once, nothing allocated per span unit


MECAB_SETTINGS = {
    "read-file": {"mecab_dic": "unidic_lite", "mecab_option": "-r /etc/passwd"},
    "dictionary-dir": {"mecab_option": "-d /tmp"},
    "unknown-dictionary": {"mecab_dic": "/tmp/dic"},
    "not-a-dict": "-r /etc/passwd",
}


@pytest.mark.parametrize("mecab", MECAB_SETTINGS.values(), ids=MECAB_SETTINGS.keys())
def test_received_mecab_options_are_refused_in_one_message(finished_run, tmp_path, capsys, mecab):
    run = received_run(finished_run, tmp_path)
    rewrite_json(run / "model" / "tokenizer_config.json", lambda t: {**t, "mecab_kwargs": mecab})
    status, out, err = command(capsys, "predict", str(run), "試合", "--device", "cpu")
    assert status == 2 and "tokenizer_config.json" in err and "MeCab options" in err and "root:" not in err
