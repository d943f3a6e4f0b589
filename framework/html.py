"""Small pieces the HTML report is assembled from: escaped text, tables, embedded images, attribution
highlighting, and rich's own HTML export for sections that bring no HTML renderer.

Plugins build their `ReportSection.html` fragments from these, so every section looks alike and nothing in the
page refers to a file or the network: images are embedded as base64 PNG.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from . import inert
from .rundir import inside

#: CSS class → what a cell or paragraph means; the reporter's stylesheet gives each a colour
GOOD, BAD, NOTE, WARNING = "good", "bad", "note", "warning"
RICH_WIDTH = 120
NUM = ' class="num"'


class Html(str):
    """A string that is already HTML: `table` and `tag` insert it as is instead of escaping it."""


def escape(value: Any) -> Html:
    """Any value as page text: control characters visible, HTML escaped (`inert.escape_html`)."""
    return value if isinstance(value, Html) else Html(inert.escape_html(value))


def tag(name: str, content: Any = "", cls: str | None = None, **attributes: Any) -> Html:
    """`<name class=cls attr=value>content</name>`; content is escaped unless it is `Html`. Attribute names use
    `_` for `-` (data_filter → data-filter)."""
    attrs = ([f'class="{escape(cls)}"'] if cls else []) + [
        f'{k.rstrip("_").replace("_", "-")}="{escape(v)}"' for k, v in attributes.items() if v is not None
    ]
    opening = " ".join([name, *attrs])
    return Html(f"<{opening}>{escape(content)}</{name}>")


def join(parts: Iterable[Any]) -> Html:
    return Html("\n".join(escape(p) for p in parts))


def table(
    headers: Sequence[Any],
    rows: Iterable[Sequence[Any]],
    caption: Any = None,
    *,
    numeric: Sequence[int] = (),
    table_id: str | None = None,
    row_classes: Sequence[str | None] | None = None,
) -> Html:
    """A table; cells are escaped unless `Html`; columns listed in `numeric` are right-aligned."""
    head = "".join(f"<th{NUM if i in numeric else ''}>{escape(h)}</th>" for i, h in enumerate(headers))
    body = []
    for k, row in enumerate(rows):
        cells = "".join(f"<td{NUM if i in numeric else ''}>{escape(c)}</td>" for i, c in enumerate(row))
        cls = row_classes[k] if row_classes and k < len(row_classes) else None
        body.append(f'<tr class="{cls}">{cells}</tr>' if cls else f"<tr>{cells}</tr>")
    ident = f' id="{escape(table_id)}"' if table_id else ""
    return captioned(f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>", caption)


def captioned(table_html: str, caption: Any) -> Html:
    """A table under its caption; a figure caption, unlike <caption>, is as wide as the page, not the table."""
    if not caption:
        return Html(table_html)
    return Html(f'<figure class="table"><figcaption>{escape(caption)}</figcaption>{table_html}</figure>')


def key_value_table(rows: Iterable[tuple[Any, Any]], caption: Any = None) -> Html:
    body = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    return captioned(f'<table class="kv"><tbody>{body}</tbody></table>', caption)


def paragraph(text: Any, cls: str | None = None) -> Html:
    return tag("p", text, cls)


def image(run_dir: Path, relative: str | Path, alt: str) -> Html:
    """The run's PNG at `relative` embedded as a data URL, so the page stands alone; a note where the run has
    no such file. The path comes from the run's own JSON: one that leaves the run is refused, or a received
    run could make its report embed any file the reader can read."""
    path = inside(run_dir, relative, "the figure")
    if not path.is_file():
        return paragraph(f"(figure {path.name} is missing from the run directory)", NOTE)
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return Html(f'<figure><img alt="{escape(alt)}" src="data:image/png;base64,{data}"></figure>')


def highlighted(text: str, words: Sequence[Sequence[float]], marked: Sequence[Sequence[int]] = ()) -> Html:
    """`text` with each word [start, end, share] shaded by its attribution: red pulls towards the predicted
    label, blue pushes away, stronger colour for a larger share of the text's attribution (relative to the
    text's largest). Character ranges in `marked` are also boxed (the unit an analysis is about)."""
    strongest = max((abs(w[2]) for w in words), default=0.0) or 1.0
    shade: dict[int, tuple[int, int, float]] = {}
    # Spans come from a run's JSON: clipped to the text, a huge one ([0, 10**12]) costs nothing.
    for start, end, share in words:
        start, end = max(0, int(start)), min(len(text), int(end))
        for i in range(start, end):
            shade[i] = (start, end, share)
    boxed = {i for start, end in marked for i in range(max(0, int(start)), min(len(text), int(end)))}
    out, i = [], 0
    while i < len(text):
        if i in shade:
            start, end, share = shade[i]
            alpha = min(1.0, abs(share) / strongest) * 0.85
            colour = f"rgba(220, 38, 38, {alpha:.2f})" if share > 0 else f"rgba(37, 99, 235, {alpha:.2f})"
            cls = "word marked" if boxed & set(range(start, end)) else "word"
            out.append(
                f'<span class="{cls}" style="background:{colour}" title="{share:+.3f}">{escape(text[start:end])}</span>'
            )
            i = end
        else:
            out.append(escape(text[i]))
            i += 1
    return Html(f'<span class="attributed">{"".join(out)}</span>')


def searchable_table(table_id: str, headers: Sequence[Any], rows: list[Sequence[Any]], what: str, **kw: Any) -> Html:
    """A table with a search box above it, scrolling inside its own box; the report's script hides rows that do
    not contain the query."""
    box = (
        f'<div class="filter"><input type="search" placeholder="filter {escape(what)}…" '
        f'data-filter="{escape(table_id)}" aria-label="filter {escape(what)}"> '
        f'<span class="count" data-count-for="{escape(table_id)}">{len(rows)} of {len(rows)} shown</span></div>'
    )
    return Html(f'{box}<div class="scroll">{table(headers, rows, table_id=table_id, **kw)}</div>')


def rich_html(renderable: Any) -> Html:
    """A rich renderable as HTML with inline styles: how a section without an `html` renderer, an outside
    plugin's, still shows in the page. Not rich's `export_html`, which leaves link targets unescaped."""
    return Html(f'<pre class="rich">{inert.rich_html(renderable, RICH_WIDTH)}</pre>')


def json_block(data: Any) -> Html:
    return tag("pre", json.dumps(data, ensure_ascii=False, indent=2, default=str), "json")
