"""A run's discussion (考察): the findings every plugin draws through the `mikiwame_findings` hook, written to
RUN_DIR/findings.json and shown as the first section of every report, facts apart from possibilities, in the
language of `--lang`. Built-in analyzers contribute through the same hook as an outside plugin; nothing here
knows an analyzer."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from rich.console import Group
from rich.text import Text

from . import html as h
from .countermeasure import addressing
from .errors import PluginError
from .findings import SCHEMA_VERSION, Evidence, Finding
from .plugins import PluginSet
from .results import ReportSection, RunResults
from .task import SPLITS

FILE_NAME = "findings.json"
SECTION = "findings"
#: The countermeasure command (issue 30) that decides whether a cue the model learned matters: retrain without it.
#: NAME is filled in by `collect_findings` with the registered countermeasures that address the finding (those whose
#: analyzer is the finding's source and whose targets' kind is one of the finding's tags).
CURES_PLACEHOLDER = "--only NAME"
COUNTERMEASURES = "mikiwame countermeasures {run_dir} " + CURES_PLACEHOLDER

#: Section titles in Japanese, by section name; a section not listed keeps its own title.
TITLES_JA = {
    SECTION: "考察",
    "model": "モデル情報",
    "data": "データの確認",
    "before_after": "ファインチューニング前後の比較",
    "classification_report": "クラスごとの評価",
    "confusion_matrix": "混同行列",
    "errors": "混同ペアごとの誤り",
    "error_slices": "スライスごとの正解率",
    "confident_errors": "確信度の高い誤り",
    "hard_training_examples": "学習しにくい訓練例",
    "token-stats": "語とラベルの統計",
    "shortcuts": "ショートカット語（寄与度と削除）",
    "entity-bias": "固有表現バイアス（入れ替えテスト）",
    "curves": "学習曲線",
    "calibration": "較正（キャリブレーション）",
    "cloze_templates": "穴埋めテンプレート",
    "label_mapping": "ラベルの対応",
}
WORDS = {
    "ja": {
        "title": "考察",
        "facts": "事実（この実行で測定され、効果なしを棄却できたもの）",
        "possibilities": "可能性（まだ決着していないもの）",
        "decide_by": "確かめ方",
        "evidence": "根拠",
        "scope": "対象",
        "none": "なし",
    },
    "en": {
        "title": "Findings",
        "facts": "Facts (measured on this run, 'no effect' excluded)",
        "possibilities": "Possibilities (not decided yet)",
        "decide_by": "decide by",
        "evidence": "evidence",
        "scope": "scope",
        "none": "none",
    },
}


def collect_findings(plugins: PluginSet, results: RunResults) -> list[Finding]:
    """Every plugin's findings through `pm.hook` (an outside plugin's are first-class), facts first; within a
    kind, in the order the plugins answered."""
    found: list[Finding] = []
    for group in reversed(plugins.hook.mikiwame_findings(results=results)):  # pluggy answers last-registered first
        for item in group or []:
            if not isinstance(item, Finding):
                raise PluginError(
                    f"a mikiwame_findings implementation returned {type(item).__name__}, not a Finding",
                    fix="build findings with mikiwame.framework.findings.conclude, fact or possibility",
                )
            found.append(name_cures(plugins, results, item))
    return sorted(found, key=lambda f: f.kind != "fact")


def name_cures(plugins: PluginSet, results: RunResults, finding: Finding) -> Finding:
    """A finding whose `decide_by` is the countermeasure command, with NAME replaced by the countermeasures the
    registry says address it (none: the command without --only, which tries every one that applies)."""
    if not finding.decide_by or CURES_PLACEHOLDER not in finding.decide_by:
        return finding
    names = addressing(plugins.countermeasures, results, finding.source, finding.tags)
    only = f"--only {','.join(names)}" if names else ""
    return dataclasses.replace(finding, decide_by=finding.decide_by.replace(CURES_PLACEHOLDER, only).replace("  ", " "))


def write_findings(directory: Path, findings: list[Finding]) -> Path:
    """RUN_DIR/findings.json, written beside and renamed so a reader never sees half of it."""
    path = directory / FILE_NAME
    partial = path.with_suffix(".json.partial")
    document = {"schema_version": SCHEMA_VERSION, "findings": [f.to_dict() for f in findings]}
    partial.write_text(json.dumps(document, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    os.replace(partial, path)
    return path


def save_findings(plugins: PluginSet, results: RunResults) -> list[Finding]:
    """Gather and write: what a finished run and `mikiwame analyze` do."""
    findings = collect_findings(plugins, results)
    write_findings(results.directory, findings)
    return findings


def rerun_command(results: RunResults, change: str) -> str:
    """The command that repeats this run with one change (`--seed 1`, `--epochs 10`): what a possibility that
    more runs would decide names as its `decide_by`."""
    recipe = results.config.get("recipe", "RECIPE")
    return f"accelerate launch recipes/{recipe}.py --config {results.directory}/config.json {change}"


def localized_title(section: ReportSection, lang: str) -> str:
    """The section's title in `lang`; a split named in parentheses stays as the data names it."""
    if lang != "ja" or section.name not in TITLES_JA:
        return section.title
    split = section.title[section.title.rfind("(") + 1 : -1] if section.title.endswith(")") else ""
    return TITLES_JA[section.name] + (f"（{split}）" if split in SPLITS else "")


def evidence_text(e: Evidence) -> str:
    """`metric value [low, high] (n=…; test p=…)`: the figure as a reader checks it."""
    parts = [f"{e.metric} {_number(e.value)}"]
    if e.interval is not None:
        parts.append(f"[{_number(e.interval[0])}, {_number(e.interval[1])}]")
    detail = [f"n={e.n}"]
    if e.test:
        detail.append(e.test + (f" p{_p(e.p)}" if e.p is not None else ""))
    elif e.p is not None:
        detail.append(f"p{_p(e.p)}")
    return " ".join(parts) + f" ({'; '.join(detail)})"


def _number(x: float) -> str:
    return f"{x:g}" if float(x).is_integer() else f"{x:.3f}"


def _p(p: float) -> str:
    if p < 1e-16:
        return " < 1e-16"
    return f"={p:.1e}" if p < 0.001 else f"={p:.3f}"


def findings_section(findings: list[Finding], lang: str) -> ReportSection:
    """The Findings / 考察 section, ordered before every other one."""
    words = WORDS[lang]
    data = {"schema_version": SCHEMA_VERSION, "lang": lang, "findings": [f.to_dict() for f in findings]}
    return ReportSection(
        SECTION,
        words["title"],
        0,
        data,
        lambda: findings_renderable(findings, lang),
        lambda: findings_html(findings, lang),
    )


def _split(findings: list[Finding]) -> tuple[list[Finding], list[Finding]]:
    return [f for f in findings if f.kind == "fact"], [f for f in findings if f.kind == "possibility"]


def findings_renderable(findings: list[Finding], lang: str) -> Group:
    """Facts (green, each with its evidence) and then possibilities (yellow, each with how to decide it), as
    lists: a claim is a sentence and must not be cut to a table column."""
    words = WORDS[lang]
    facts, possibilities = _split(findings)
    lines: list[Text] = [Text(words["facts"], style="bold green")]
    for f in facts:
        lines.append(Text.assemble(("● ", "green"), f.claim[lang]))
        lines += [Text(f"    {words['evidence']}: {evidence_text(e)}", style="dim") for e in f.evidence]
    lines += [] if facts else [Text(f"  {words['none']}")]
    lines.append(Text(words["possibilities"], style="bold yellow"))
    for f in possibilities:
        lines.append(Text.assemble(("○ ", "yellow"), f.claim[lang]))
        lines.append(Text(f"    {words['decide_by']}: {f.decide_by}", style="dim"))
    lines += [] if possibilities else [Text(f"  {words['none']}")]
    return Group(Text(words["title"], style="bold underline"), *lines)


def findings_html(findings: list[Finding], lang: str) -> str:
    words = WORDS[lang]
    facts, possibilities = _split(findings)
    fact_rows = [
        [h.tag("span", f.claim[lang], h.GOOD), h.join(h.tag("div", evidence_text(e)) for e in f.evidence)]
        for f in facts
    ]
    may_rows = [[h.tag("span", f.claim[lang], h.WARNING), f.decide_by or ""] for f in possibilities]
    return h.join(
        [
            h.table([words["facts"], words["evidence"]], fact_rows) if facts else h.paragraph(words["none"], h.NOTE),
            h.table([words["possibilities"], words["decide_by"]], may_rows)
            if possibilities
            else h.paragraph(words["none"], h.NOTE),
        ]
    )
