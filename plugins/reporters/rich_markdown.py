"""A section's terminal renderable as Markdown, so every analyzer's tables (an outside plugin's too) reach the
Markdown report as tables a student can paste, without each analyzer writing a Markdown version of itself.

Tables become Markdown tables, text becomes paragraphs, groups and panels are walked; anything else is drawn by
rich as plain text inside a code fence. Every string is made inert for Markdown: HTML-significant characters
are escaped (a label such as `<script>` stays text in any Markdown viewer) and pipes cannot break a table."""

from __future__ import annotations

import html
import io
import re
from typing import Any

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from mikiwame.framework.inert import console, visible

FENCE_WIDTH = 100


def plain(value: Any) -> str:
    """A cell or line as the reader sees it in the terminal (whose console parses no markup): styles dropped,
    control characters shown visibly."""
    if isinstance(value, Text):
        return visible(value.plain)
    return "" if value is None else visible(value)


def inert(text: str) -> str:
    """Escaped for Markdown: raw HTML cannot pass, a pipe cannot end a cell, a line break cannot end a row."""
    return html.escape(text, quote=False).replace("|", "\\|").replace("\n", " ").replace("\r", " ")


def table_markdown(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(inert(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(inert(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def rich_table_markdown(table: Table) -> str:
    headers = [plain(column.header) for column in table.columns]
    columns = [[plain(cell) for cell in column.cells] for column in table.columns]
    rows = [list(row) for row in zip(*columns, strict=True)]
    title = f"**{inert(plain(table.title))}**\n\n" if table.title else ""
    return title + table_markdown(headers, rows)


def fenced(renderable: Any) -> str:
    """What rich draws, as plain text in a code fence longer than any backtick run inside it."""
    drawing = console(file=io.StringIO(), width=FENCE_WIDTH, color_system=None, force_terminal=False)
    drawing.print(renderable)
    drawn = drawing.file.getvalue().rstrip()  # type: ignore[attr-defined]
    longest = max((len(run) for run in re.findall(r"`+", drawn)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{drawn}\n{fence}"


def to_markdown(renderable: Any) -> str:
    """Markdown for a renderable: blocks separated by blank lines, empty where it draws nothing."""
    if isinstance(renderable, Table):
        return rich_table_markdown(renderable)
    if isinstance(renderable, Group):
        return "\n\n".join(part for part in (to_markdown(r) for r in renderable.renderables) if part)
    if isinstance(renderable, Panel):
        title = f"**{inert(plain(renderable.title))}**\n\n" if renderable.title else ""
        return title + to_markdown(renderable.renderable)
    if isinstance(renderable, Text | str):
        return inert(plain(renderable)).strip()
    return fenced(renderable)
