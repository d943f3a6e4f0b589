"""`mikiwame report RUN_DIR` renders every saved analyzer result, in the terminal and as JSON."""

from __future__ import annotations

import json
import shutil

import pytest

from mikiwame.framework.cli import main

SECTIONS = (
    "errors",
    "error_slices",
    "confident_errors",
    "hard_training_examples",
    "token-stats",
    "curves",
    "calibration",
)


def test_json_report_has_every_analyzer_section(planted_run, capsys):
    assert main(["report", str(planted_run), "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert set(SECTIONS) <= set(document["sections"])
    assert set(document["analyses"]) == {"errors", "token-stats", "curves", "calibration"}


def test_terminal_report_renders_every_analyzer_section(planted_run, capsys):
    assert main(["report", str(planted_run)]) == 0
    out = capsys.readouterr().out
    for text in (
        "Errors by confusion pair",
        "Accuracy by slice",
        "Words and noun spans",
        "Learning curves",
        "Calibration",
    ):
        assert text in out, text


def test_analyze_compares_runs_given_with_compare(planted_run, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    run_dir = shutil.copytree(planted_run, tmp_path / planted_run.name)
    other = shutil.copytree(planted_run, tmp_path / "other-run")
    assert main(["analyze", str(run_dir), "curves", "--compare", str(other)]) == 0
    out = capsys.readouterr().out
    assert "Runs compared" in out and "final macro-F1" in out and "McNemar exact" in out
    result = json.loads((run_dir / "analyses" / "curves.json").read_text(encoding="utf-8"))
    assert [r["name"] for r in result["runs"]] == [run_dir.name, "other-run"]
    (paired,) = result["paired"]["comparisons"]  # the same run copied: paired by compare, no difference
    assert paired["accuracy"]["delta"] == 0 and paired["accuracy"]["mcnemar"]["p"] == 1.0
    assert result["paired"]["config_differences"] == [] and result["runs"][1]["final"]["macro_f1"]["n"] > 0
    assert (run_dir / result["figure"]).stat().st_size > 0


def test_unknown_analyzer_is_a_clear_error(planted_run, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["analyze", str(planted_run), "token-stat"])
    assert exit_.value.code == 2
    assert "token-stats" in capsys.readouterr().err


def test_markdown_report_has_every_analyzers_tables(planted_run, tmp_path, capsys):
    """The analyzer sections arrive as Markdown tables (converted from their terminal renderables), the planted
    word in the word–label table's row of its label."""
    run_dir = shutil.copytree(planted_run, tmp_path / planted_run.name)
    assert main(["report", str(run_dir), "--format", "markdown", "--lang", "en"]) == 0
    text = (run_dir / "report.md").read_text(encoding="utf-8")
    assert "Its tables are in the HTML report" not in text
    words = text[text.index("## Word–label statistics") :]
    words = words[: words.index("\n## ")] if "\n## " in words else words
    assert any(row.startswith("| ") and "猫" in row and "sports" in row for row in words.splitlines())
    for title in ("## Errors by confusion pair", "## Accuracy by slice", "## Calibration"):
        section = text[text.index(title) :].split("\n## ")[0]
        assert "\n|---|" in section, title


def test_markdown_from_a_renderable_is_inert():
    """Strings from a received run cannot inject HTML or break the table or the code fence."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    from mikiwame.plugins.reporters.rich_markdown import to_markdown

    table = Table("label", "n")
    table.add_row(Text("<script>alert(1)</script>|x\nnext"), "3")
    markdown = to_markdown(Group(table, Text("a & <b>"), object.__new__(Fence)))
    assert "<script>" not in markdown and "&lt;script&gt;alert(1)&lt;/script&gt;\\|x next" in markdown
    assert markdown.splitlines()[2].count(" | ") == 1
    assert "a &amp; &lt;b&gt;" in markdown
    assert "`````text\n``` ````\n`````" in markdown


class Fence:
    """A renderable the converter has no rule for, drawing backtick runs that must not close its fence."""

    def __rich__(self) -> str:
        return "``` ````"


def test_curves_compare_keeps_runs_tested_on_other_texts_unpaired_and_says_why(planted_run, tmp_path):
    run_dir = shutil.copytree(planted_run, tmp_path / planted_run.name)
    other = shutil.copytree(planted_run, tmp_path / "fewer-texts")
    rows = (other / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
    test_rows = [k for k, line in enumerate(rows) if json.loads(line)["split"] == "test"]
    del rows[test_rows[-1]]
    (other / "predictions.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert main(["analyze", str(run_dir), "curves", "--compare", str(other)]) == 0
    result = json.loads((run_dir / "analyses" / "curves.json").read_text(encoding="utf-8"))
    assert len(result["runs"]) == 2 and result["paired"]["comparisons"] == []
    assert "the number of test texts differs" in result["paired"]["not_paired"]
