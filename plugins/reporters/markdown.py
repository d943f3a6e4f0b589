"""`mikiwame report RUN_DIR --format markdown`: the findings (考察) first, then the before/after table,
sklearn's classification report and the confusion matrix as Markdown tables, every other section (each
analyzer's, an outside plugin's too) converted from its terminal renderable, and every section's figure by its
path in the run directory, so a student can paste it into a report. Written to RUN_DIR/report.md and printed."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mikiwame.framework import hookimpl
from mikiwame.framework.discussion import SECTION, WORDS, evidence_text
from mikiwame.framework.findings import Finding, default_lang
from mikiwame.framework.results import ReportSection, RunResults
from mikiwame.framework.rundir import inside
from mikiwame.plugins.reporters.html import write_atomically
from mikiwame.plugins.reporters.rich_markdown import inert, table_markdown, to_markdown
from mikiwame.plugins.reporters.run_report import label_count_rows, model_rows

FILE_NAME = "report.md"
HEADINGS = {
    "ja": {
        "report": "実験レポート",
        "metric": "指標（95% 信頼区間）",
        "label": "ラベル",
        "gold": "正解 \\ 予測",
        "figure": "図",
        "elsewhere": "この節の表は JSON（--format json）を参照。",
    },
    "en": {
        "report": "Report",
        "metric": "metric (95% CI)",
        "label": "label",
        "gold": "gold \\ predicted",
        "figure": "figure",
        "elsewhere": "This section's figures are in the JSON report (--format json).",
    },
}
PLOTS = {"confusion_matrix": "plots/confusion_matrix.png"}


def table(headers: Sequence[Any], rows: Sequence[Sequence[Any]]) -> str:
    return table_markdown([str(h) for h in headers], [[str(c) for c in row] for row in rows])


def findings_markdown(findings: list[Finding], lang: str) -> str:
    """Facts with their evidence, then possibilities with how to decide them: two lists a reader cannot mix."""
    words = WORDS[lang]
    parts = [f"### {words['facts']}", ""]
    facts = [f for f in findings if f.kind == "fact"]
    for f in facts:
        parts.append(f"- {inert(f.claim[lang])}")
        parts += [f"  - {words['evidence']}: {inert(evidence_text(e))}" for e in f.evidence]
    parts += [] if facts else [f"- {words['none']}"]
    parts += ["", f"### {words['possibilities']}", ""]
    possibilities = [f for f in findings if f.kind == "possibility"]
    for f in possibilities:
        parts += [f"- {inert(f.claim[lang])}", f"  - {words['decide_by']}: {command(f.decide_by or '')}"]
    parts += [] if possibilities else [f"- {words['none']}"]
    return "\n".join(parts)


def command(decide_by: str) -> str:
    """A runnable `decide_by` as code, an experiment described in words as text."""
    if decide_by.startswith(("mikiwame ", "accelerate ")) and "`" not in decide_by:
        return f"`{decide_by}`"
    return inert(decide_by)


def model_markdown(data: dict[str, Any], words: dict[str, str]) -> str:
    return table(["", ""], model_rows(data))


def data_markdown(data: dict[str, Any], words: dict[str, str]) -> str:
    headers, rows = label_count_rows(data)
    return table([words["label"], *headers[1:]], rows)


def _estimate(e: dict[str, Any]) -> str:
    return f"{e['value']:.3f} [{e['low']:.3f}, {e['high']:.3f}]"


def before_after_markdown(data: dict[str, Any], words: dict[str, str]) -> str:
    columns = list(data)
    rows = [
        [name, *(_estimate(data[c][key]) for c in columns)]
        for name, key in (("accuracy", "accuracy"), ("macro-F1", "macro_f1"), ("loss", "loss"))
    ]
    return table([words["metric"], *(f"{c} (n={data[c]['n']})" for c in columns)], rows)


def classification_markdown(data: dict[str, Any], words: dict[str, str]) -> str:
    rows = [
        [name, *(f"{v[k]:.3f}" for k in ("precision", "recall", "f1-score")), int(v["support"])]
        for name, v in data.items()
        if isinstance(v, dict)
    ]
    return table([words["label"], "precision", "recall", "f1-score", "support"], rows)


def confusion_markdown(data: dict[str, Any], words: dict[str, str]) -> str:
    labels = data["labels"]
    return table([words["gold"], *labels], [[label, *row] for label, row in zip(labels, data["matrix"], strict=True)])


TABLES: dict[str, Callable[[Any, dict[str, str]], str]] = {
    "model": model_markdown,
    "data": data_markdown,
    "before_after": before_after_markdown,
    "classification_report": classification_markdown,
    "confusion_matrix": confusion_markdown,
}


def figure_path(section: ReportSection) -> str | None:
    """The section's figure, relative to the run directory: an analyzer's saved `figure`, or the run's plot."""
    if isinstance(section.data, dict) and isinstance(section.data.get("figure"), str):
        return section.data["figure"]
    return PLOTS.get(section.name)


def linkable(directory: Path, figure: str) -> bool:
    """A figure a received run names is linked when it is a file inside the run (rundir.inside refuses one
    outside, as the HTML report does) whose name cannot break the Markdown link."""
    return inside(directory, figure, "the figure").is_file() and not set(figure) & set("<>`\n")


def section_markdown(section: ReportSection, results: RunResults, lang: str) -> str:
    words = HEADINGS[lang]
    parts = [f"## {inert(section.title)}", ""]
    if section.name == SECTION:
        parts.append(findings_markdown([Finding.from_dict(f) for f in section.data["findings"]], lang))
    elif section.name in TABLES:
        parts.append(TABLES[section.name](section.data, words))
    elif section.rich is not None:
        parts.append(to_markdown(section.rich()))
    else:
        parts.append(words["elsewhere"])
    figure = figure_path(section)
    if figure and linkable(results.directory, figure):
        path = results.directory / figure
        parts += ["", f"![{inert(section.title)}](<{figure}>)", "", f"{words['figure']}: `{path}`"]
    return "\n".join(parts)


def document(results: RunResults, sections: list[ReportSection]) -> str:
    findings = next((s for s in sections if s.name == SECTION), None)
    lang = findings.data["lang"] if findings else default_lang()
    head = f"# {HEADINGS[lang]['report']}: {inert(results.name)}"
    return "\n\n".join([head, *(section_markdown(s, results, lang) for s in sections)]) + "\n"


class MarkdownReporter:
    name = "markdown"
    live = False

    def render(self, results: RunResults, sections: list[ReportSection]) -> Path:
        text = document(results, sections)
        path = results.directory / FILE_NAME
        write_atomically(path, text)
        sys.stdout.write(text)
        return path


@hookimpl
def mikiwame_register_reporters(register):
    register(MarkdownReporter())
