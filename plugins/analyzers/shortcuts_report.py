"""How the `shortcuts` analyzer's saved result is shown: the terminal's rich renderable and the HTML report's
fragment (per-word attribution highlighting), built from the same lines and table cells."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from mikiwame.framework import html as h
from mikiwame.framework.figures import with_interval


def highlighted(example: dict[str, Any]) -> Text:
    text = Text(example["text"])
    for start, end in example["spans"]:
        text.stylize("bold reverse red", start, end)
    return text


CANDIDATE_COLUMNS = (
    "",
    "unit",
    "label",
    "support",
    "share [95%]",
    "oracle flips k/n [95%]",
    "Δp",
    "purity (n train)",
    "format evidence",
)


def _format_evidence(c: dict[str, Any]) -> str:
    """Why the unit looks like a format artefact: its kind, usual place, bracketing, share of the label's
    training texts, and what was folded into it."""
    e = c.get("evidence")
    if not e:
        return ""
    parts = [c.get("kind", ""), f"{e['place']} {e['position_regularity']:.0%}"]
    if e["bracketed"]:
        parts.append(f"in brackets {e['bracketed']:.0%}")
    parts.append(f"in {e['label_train_share']:.0%} of {c['label']} training texts")
    if c.get("folded"):
        parts.append("folds " + ", ".join(c["folded"]))
    return "; ".join(p for p in parts if p)


def _candidate_cells(c: dict[str, Any]) -> list[str]:
    """The table cells after the flag and unit columns: the attribution share next to the oracle's flip rate
    (deleting the unit from every text of its support)."""
    flip = c["deletion_flip_rate"]
    return [
        c["label"],
        str(c["support"]),
        with_interval(c["attribution_share"]) if c.get("attribution_share") else "–",
        f"{flip['k']}/{flip['n']} " + with_interval(flip),
        f"{c['deletion_probability_drop']['mean']:.2f}" if c["deletion_probability_drop"]["n"] else "–",
        f"{c['train_purity']:.2f} ({c['train_count']})",
        _format_evidence(c),
    ]


def _candidates_title(result: dict[str, Any]) -> tuple[str, str]:
    t = result["thresholds"]
    proposes = (
        f"the {t['proposals']} pure units with the highest mean |share|"
        if "proposals" in t
        else f"units with share ≥ {t['min_attribution_share']}"  # an analysis saved before session 7
    )
    return (
        f"Units the model leans on most ({result['method']}, {result['n_texts']} evaluation texts)",
        f"flagged (!) when support ≥ {t['min_support']}, training purity of the unit ≥ {t['min_purity']} and "
        f"the oracle's deletion flip rate ≥ {t['min_flip_rate']} (overlapping units folded into one); "
        f"attribution proposes {proposes}; intervals are 95% (bootstrap / Wilson)",
    )


def candidates_table(result: dict[str, Any]) -> Table:
    title, caption = _candidates_title(result)
    table = Table(title=title, title_justify="left", caption=caption)
    for column in CANDIDATE_COLUMNS:
        table.add_column(column, justify="left" if column in ("unit", "label", "format evidence") else "right")
    for c in result["candidates"]:
        table.add_row(
            Text("!", style="bold red") if c["flagged"] else "",
            Text(c["unit"], style="bold" if c["flagged"] else ""),
            *map(Text, _candidate_cells(c)),
        )
    return table


def _summary_lines(result: dict[str, Any]) -> list[str]:
    """Comprehensiveness against its control, and completeness of the integrated gradients."""
    lines = []
    aopc = result["comprehensiveness"]
    if aopc and aopc["top"]["n"]:
        lines.append(
            f"comprehensiveness AOPC (top 1..{aopc['k']} words deleted): {with_interval(aopc['top'])}; "
            f"random words deleted (control): {with_interval(aopc['random'])}; n={aopc['top']['n']} texts"
        )
    if result["convergence"]:
        c = result["convergence"]
        lines.append(
            f"completeness: median relative delta {c['median_relative_delta']:.3f}, max "
            f"{c['max_relative_delta']:.3f}; {c['share_over_threshold']:.0%} over "
            f"{result['thresholds']['max_relative_delta']:.0%}"
            + (
                f" ({c['share_integrated_again']:.0%} of texts integrated again with {result['fallback_steps']}"
                f" steps instead of {result['n_steps']})"
                if c.get("share_integrated_again") is not None
                else ""
            )
        )
    return lines


def _evidence(c: dict[str, Any]) -> str:
    flip = c["deletion_flip_rate"]
    share = c.get("attribution_share")
    taken = f"it takes {share['mean']:.0%} of the attribution in" if share else "it is in"
    evidence = _format_evidence(c)
    return (
        f"shortcut {c['unit']!r} → {c['label']}: {c['train_purity']:.0%} of its {c['train_count']} "
        f"training texts are {c['label']}; {taken} {c['support']} texts; deleting it flips {flip['k']} of "
        f"those {flip['n']} predictions (oracle)" + (f"; {evidence}" if evidence else "")
    )


def _verdict(verdict: dict[str, Any] | None) -> str:
    """What the shortcut table found for a unit listed against the gold label (absent in older analyses)."""
    if verdict is None:
        return ""
    if verdict["status"] == "not tested":
        purity = f"{verdict['train_purity']:.0%} {verdict['label']}" if verdict["label"] else "unseen"
        return f"; not tested as a shortcut: training purity {purity}, below the rule or too little support"
    flips = verdict["flips"]
    whole = "" if verdict["unit"] == "" else f" {verdict['unit']!r} → {verdict['label']}"
    said = "flagged as shortcut" if verdict["status"] == "flagged" else "not relied on:"
    return f"; {said}{whole}, deleting it flips {flips['k']}/{flips['n']}"


def _against_gold_line(result: dict[str, Any]) -> str | None:
    against = result.get("against_gold")
    if not against or not against["units"]:
        return None
    listed = "; ".join(
        f"{r['unit']} (gold {r['gold']}, {share['mean']:+.2f}, n={share['n']}{_verdict(r.get('verdict'))})"
        for r in against["units"][:5]
        for share in [r["attribution_share"]]
    )
    attributed = f" ({against['n_attributed']} of them attributed)" if "n_attributed" in against else ""
    return f"in the {against['n_errors']} errors{attributed}, units arguing against the gold label: {listed}"


LEGEND = h.Html(
    '<p class="legend">word colour: <span style="background:rgba(220,38,38,0.6)">pulls towards the predicted '
    'label</span> <span style="background:rgba(37,99,235,0.6)">pushes away</span>; stronger colour, larger share '
    "of the text's attribution (hover a word for its share); a boxed word is the unit in question</p>"
)


def shortcuts_html(result: dict[str, Any]) -> str:
    """Candidates with their evidence, flagged units with highlighted examples, and per-word attributions of a
    few evaluation texts (errors first)."""
    title, caption = _candidates_title(result)
    rows = [
        [h.tag("span", "!", h.BAD) if c["flagged"] else "", h.tag("strong", c["unit"]), *_candidate_cells(c)]
        for c in result["candidates"]
    ]
    candidates = (
        h.table(CANDIDATE_COLUMNS, rows, f"{title}; {caption}", numeric=range(3, len(CANDIDATE_COLUMNS) - 1))
        if rows
        else h.paragraph(f"{title}: no unit in at least {result['thresholds']['min_support']} texts", h.NOTE)
    )
    parts: list[Any] = [
        candidates,
        *(h.paragraph(line) for line in _summary_lines(result)),
        LEGEND,
    ]
    if not result["flagged"]:
        parts.append(h.paragraph("no unit meets every part of the rule: no shortcut flagged", h.GOOD))
    for c in result["flagged"]:
        examples = [h.tag("li", h.highlighted(e["text"], e.get("words", []), e["spans"])) for e in c["examples"]]
        parts += [h.paragraph(_evidence(c), h.BAD), h.tag("ul", h.join(examples))]
    examples = result.get("attributed_examples", [])
    if examples:
        parts.append(
            h.table(
                ["text (attribution to the predicted label per MeCab word)", "predicted (p)", "gold"],
                [
                    [
                        h.highlighted(e["text"], e["words"]),
                        f"{e['predicted']} ({e['probability']:.2f})",
                        e["gold"] or "–",
                    ]
                    for e in examples
                ],
                f"Word attributions ({result['method']}) of {len(examples)} evaluation texts, errors first",
                row_classes=["error" if e["gold"] and e["gold"] != e["predicted"] else None for e in examples],
            )
        )
    against = _against_gold_line(result)
    parts += [h.paragraph(against)] if against else []
    parts += [h.paragraph(f"warning: {w}", h.WARNING) for w in result["warnings"]]
    return h.join(parts)


def shortcuts_renderable(result: dict[str, Any]) -> Group:
    """The terminal's version of the section."""
    parts: list[Any] = [candidates_table(result), *(Text(line) for line in _summary_lines(result))]
    for c in result["flagged"]:
        parts.append(Text(_evidence(c), style="bold"))
        parts += [Text("  ") + highlighted(e) for e in c["examples"]]
    against = _against_gold_line(result)
    parts += [Text(against)] if against else []
    parts += [Text(f"warning: {w}", style="yellow") for w in result["warnings"]]
    return Group(*parts)
