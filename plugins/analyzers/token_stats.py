"""`token-stats`: which MeCab words (and merged noun spans) go with which label in the training data.

After Gardner et al. (2021), "Competency problems": if a word carried no information about the label, the share
of its texts with label y would be the prior p(y). For each word x seen in at least `min_count` training texts
(n texts, k of them labelled y) the z-statistic is (k/n - p(y)) / sqrt(p(y)(1 - p(y)) / n). The p-value is the
exact binomial one (two-sided, twice the smaller tail), and Benjamini–Hochberg over every (unit, label) test
keeps the expected share of false discoveries at `alpha`. A significant word is a candidate shortcut the model
can learn instead of the task; the words are what a reader should look at first, not proof of a shortcut.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from rich.console import Group
from rich.table import Table

from mikiwame.framework import hookimpl, inert
from mikiwame.framework import html as h
from mikiwame.framework.analysis import AnalysisContext, Analyzer
from mikiwame.framework.findings import Finding
from mikiwame.framework.japanese import noun_spans, words
from mikiwame.framework.options import option, read_options
from mikiwame.framework.results import ReportSection, RunResults
from mikiwame.framework.runfiles import AnyOf, Between, Count, Fraction, Obj
from mikiwame.plugins.analyzers.token_stats_findings import token_stats_findings

NAME = "token-stats"
ALPHA = 0.05
MIN_COUNT = 3
TOP = 10
HEATMAP_WORDS_PER_LABEL = 5
ROW = Obj(
    {
        "unit": str,
        "kind": str,
        "k": Count,
        "n": Annotated[int, Between(1)],
        "purity": Fraction,
        "z": float,
        "q": Fraction,
        "significant": bool,
    }
)
RESULT = AnyOf(
    Obj(
        {
            "n_texts": Count,
            "tests": Count,
            "alpha": Fraction,
            "discoveries": Count,
            "prior": dict[str, Fraction],
            "top": dict[str, list[ROW]],  # type: ignore[valid-type]  # a schema, not a type
            "figure": str,
            "warnings": list[str],
        }
    ),
    Obj({"message": str, "top": Annotated[Obj(), Between(0, 0)]}),
)


def text_units(text: str) -> dict[str, set[str]]:
    """The content words and the merged noun spans of one text, each counted once per text."""
    tokens = words(text)
    return {"word": {w.surface for w in tokens if w.is_content}, "span": set(noun_spans(tokens))}


def word_label_statistics(
    texts: Sequence[str],
    labels: Sequence[str],
    label_names: Sequence[str],
    *,
    alpha: float = ALPHA,
    min_count: int = MIN_COUNT,
    top: int = TOP,
) -> dict[str, Any]:
    """Counts, purity, z and BH-corrected p-values for every unit in at least `min_count` texts."""
    from scipy import stats  # here: scipy costs every command's start-up

    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
    label_index = {label: i for i, label in enumerate(label_names)}
    y = np.asarray([label_index[label] for label in labels])
    prior = np.bincount(y, minlength=len(label_names)) / len(y)
    counts: dict[tuple[str, str], np.ndarray] = {}
    for text, label in zip(texts, y, strict=True):
        for kind, units in text_units(text).items():
            for unit in units:
                counts.setdefault((kind, unit), np.zeros(len(label_names), dtype=np.int64))[label] += 1
    keys = sorted(key for key, c in counts.items() if c.sum() >= min_count)
    table = np.asarray([counts[key] for key in keys], dtype=np.int64).reshape(len(keys), len(label_names))
    n = table.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (table / n - prior) / np.sqrt(prior * (1 - prior) / n)
    z = np.nan_to_num(z)
    tails = np.minimum(stats.binom.sf(table - 1, n, prior), stats.binom.cdf(table, n, prior))
    p = np.minimum(1.0, 2 * tails)
    q = stats.false_discovery_control(p.ravel(), method="bh").reshape(p.shape) if p.size else p
    rows = [
        {
            "unit": unit,
            "kind": kind,
            "n": int(n[i, 0]),
            "counts": {label: int(c) for label, c in zip(label_names, table[i], strict=True)},
            "label": label_names[int(np.argmax(z[i]))],
            "purity": float(table[i].max() / n[i, 0]),
            "z": {label: round(float(v), 3) for label, v in zip(label_names, z[i], strict=True)},
            "q": {label: float(v) for label, v in zip(label_names, q[i], strict=True)},
        }
        for i, (kind, unit) in enumerate(keys)
    ]
    top_per_label = {}
    for j, label in enumerate(label_names):
        order = [i for i in np.argsort(-z[:, j], kind="stable") if z[i, j] > 0][:top]
        top_per_label[label] = [
            {
                "unit": keys[i][1],
                "kind": keys[i][0],
                "n": int(n[i, 0]),
                "k": int(table[i, j]),
                "counts": {label: int(c) for label, c in zip(label_names, table[i], strict=True)},
                "purity": float(table[i, j] / n[i, 0]),
                "z": float(z[i, j]),
                "p": float(p[i, j]),
                "q": float(q[i, j]),
                "significant": bool(q[i, j] < alpha),
            }
            for i in order
        ]
    significant = [r for r, qs in zip(rows, q, strict=True) if (qs < alpha).any()]
    return {
        "n_texts": len(texts),
        "labels": list(label_names),
        "prior": {label: float(v) for label, v in zip(label_names, prior, strict=True)},
        "alpha": alpha,
        "min_count": min_count,
        "units_tested": len(keys),
        "tests": int(p.size),
        "discoveries": int((q < alpha).sum()),
        "top": top_per_label,
        "significant_units": sorted(significant, key=lambda r: -max(r["z"].values())),
    }


def save_heatmap(result: dict[str, Any], path: Path) -> str | None:
    """Purity p(label | unit) of the top units of each label, rows numbered (listed in result["heatmap_rows"]);
    returns the CJK font used (None: Japanese drawn as boxes)."""
    from mikiwame.framework import plots  # matplotlib, imported only to draw

    labels = result["labels"]
    chosen: dict[tuple[str, str], dict[str, Any]] = {}
    for label in labels:
        for row in result["top"][label][:HEATMAP_WORDS_PER_LABEL]:
            chosen.setdefault((row["kind"], row["unit"]), row)
    rows = list(chosen.values())
    result["heatmap_rows"] = [row["unit"] for row in rows]  # numbered in the figure, readable without a CJK font
    matrix = np.asarray([[row["counts"][lab] / row["n"] for lab in labels] for row in rows])
    with plots.japanese_text() as font:
        fig, ax = plots.plt.subplots(figsize=(1.5 + 1.1 * len(labels), 1.5 + 0.32 * max(len(rows), 1)))
        image = ax.imshow(matrix.reshape(len(rows), len(labels)), cmap="Blues", vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(len(labels)), [f"{lab}\n(prior {result['prior'][lab]:.2f})" for lab in labels])
        ax.set_yticks(range(len(chosen)), [f"{i}. {row['unit']} (n={row['n']})" for i, row in enumerate(rows, 1)])
        ax.tick_params(axis="x", labelrotation=45)
        fig.colorbar(image, ax=ax, label="p(label | unit) in the training texts")
        ax.set_title(f"top words/spans per label ({result['n_texts']} training texts)")
        plots.save_figure(fig, path)
    return font


class TokenStatsAnalyzer(Analyzer):
    name = NAME
    description = "word–label statistics on MeCab words and noun spans: z against the prior, BH-corrected"

    def analyze(self, context: AnalysisContext) -> dict[str, Any]:
        from mikiwame.framework import plots  # matplotlib, imported only to draw

        train = context.task_data.split("train")
        if not train:
            return {"message": "the run has no training split to count words in", "top": {}}
        alpha = read_options(TokenStatsOptions, context.options).token_stats_alpha
        result = word_label_statistics(
            [e.text for e in train], [e.label for e in train], context.task_data.labels, alpha=alpha
        )
        figure = context.directory / "analyses" / "token_stats_heatmap.png"
        font = save_heatmap(result, figure)
        result["figure"] = str(figure.relative_to(context.directory))
        result["warnings"] = [] if font else [plots.NO_CJK_FONT.format(path=result["figure"])]
        return result


def _q(value: float) -> str:
    return f"{value:.1e}" if value < 0.001 else f"{value:.3f}"


TOP_COLUMNS = ("label (prior)", "unit", "kind", "k / n", "purity", "z", "q")


def _top_title(result: dict[str, Any]) -> tuple[str, str]:
    return (
        f"Words and noun spans most over-represented per label (training split, n={result['n_texts']})",
        f"z: deviation of p(label | unit) from the prior; q: Benjamini–Hochberg-corrected p over "
        f"{result['tests']} tests; * = q < {result['alpha']}; {result['discoveries']} discoveries",
    )


def top_rows(result: dict[str, Any]) -> list[tuple[dict[str, Any], bool, list[str]]]:
    """(row, last of its label, cells after the unit) for the top five units of each label."""
    out = []
    for label, rows in result["top"].items():
        for i, row in enumerate(rows[:5]):
            cells = [
                f"{label} ({result['prior'].get(label, 0.0):.2f})" if i == 0 else "",
                row["kind"],
                f"{row['k']}/{row['n']}",
                f"{row['purity']:.2f}",
                f"{row['z']:.1f}",
                _q(row["q"]) + (" *" if row["significant"] else ""),
            ]
            out.append((row, i == min(len(rows), 5) - 1, cells))
    return out


def top_table(result: dict[str, Any]) -> Table:
    title, caption = _top_title(result)
    table = Table(title=title, title_justify="left", caption=caption)
    for column in TOP_COLUMNS:
        table.add_column(column, justify="left" if column in ("label (prior)", "unit", "kind") else "right")
    for row, last, cells in top_rows(result):
        unit = inert.text(row["unit"], style="bold" if row["significant"] else "dim")
        table.add_row(inert.text(cells[0]), unit, *cells[1:], end_section=last)
    return table


def token_stats_html(results: RunResults, result: dict[str, Any]) -> str:
    title, caption = _top_title(result)
    rows = [
        [cells[0], h.tag("strong", row["unit"]) if row["significant"] else row["unit"], *cells[1:]]
        for row, _, cells in top_rows(result)
    ]
    parts = [h.table(TOP_COLUMNS, rows, f"{title}; {caption}", numeric=range(3, 7))]
    parts.append(h.image(results.directory, result["figure"], "word-label heat map"))
    parts += [h.paragraph(f"warning: {w}", h.WARNING) for w in result["warnings"]]
    return h.join(parts)


@hookimpl
def mikiwame_report_sections(results: RunResults) -> list[ReportSection]:
    result = results.analysis(NAME, RESULT)
    if result is None:
        return []
    if "message" in result:
        return [ReportSection(NAME, "Word–label statistics", 70, result, lambda: inert.text(result["message"]))]

    def render() -> Group:
        parts: list[Any] = [top_table(result), inert.text(f"heat map: {results.directory / result['figure']}")]
        parts += [inert.text(f"warning: {w}", style="yellow") for w in result["warnings"]]
        return Group(*parts)

    data = {k: v for k, v in result.items() if k != "significant_units"}
    return [ReportSection(NAME, "Word–label statistics", 70, data, render, lambda: token_stats_html(results, result))]


@dataclass
class TokenStatsOptions:
    token_stats_alpha: float = option(ALPHA, "token-stats: false discovery rate for the Benjamini–Hochberg correction")


@hookimpl
def mikiwame_options():
    return TokenStatsOptions


@hookimpl
def mikiwame_register_analyzers(register):
    register(TokenStatsAnalyzer())


@hookimpl
def mikiwame_findings(results: RunResults) -> list[Finding]:
    result = results.analysis(NAME, RESULT)
    return [] if result is None else token_stats_findings(results, result)
