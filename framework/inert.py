"""The one path by which strings from data or a run directory reach a terminal or a web page: inert.

A label, a text, a run-directory name or a value in a received JSON file is data, never instructions. So rich
markup in it is shown literally (`x[red]y` stays `x[red]y`, `x[/bold]y` raises no MarkupError), emoji codes
stay codes, control characters are shown as visible symbols (ESC as ␛: no window title, screen clear or
hyperlink reaches the terminal), bidirectional overrides as their code point, and in HTML every character is
escaped, link targets included (rich's own `export_html` writes `style.link` unescaped, so a received label
`[link="><script>…]` would have landed as live script).

The CLI and the reporters print through `console()`: it parses no markup and makes every rendered segment
visible in a render hook, so a renderable built by any plugin, from `Text` or from plain strings, is inert.
Plain `print` and the HTML report use `visible()`; rich renderables become HTML through `rich_html()`.
"""

from __future__ import annotations

import html
import io
import json
import re
from collections.abc import Iterator
from typing import Any

from rich.console import Console, ConsoleRenderable, RenderableType, RenderHook
from rich.segment import Segment
from rich.style import Style
from rich.terminal_theme import DEFAULT_TERMINAL_THEME
from rich.text import Text

#: C0 controls (tab and newline excepted) as their Unicode control pictures (ESC → ␛, BEL → ␇), DEL as ␡
_PICTURES = {c: chr(0x2400 + c) for c in range(0x20) if chr(c) not in "\t\n"} | {0x7F: "\u2421"}
#: C1 controls and the characters that reorder or hide text, as a visible code (\x9b, \u202e)
_CODES = {c: f"\\x{c:02x}" for c in range(0x80, 0xA0)} | {
    c: f"\\u{c:04x}" for c in (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A), 0xFEFF)
}
_VISIBLE = str.maketrans(_PICTURES | _CODES)
#: the same characters as JSON escapes (json.dumps escapes C0 but not DEL), so JSON output is inert and still equal
_JSON_ESCAPED = str.maketrans({c: f"\\u{c:04x}" for c in (0x7F, *_CODES)})
#: a link kept in output: a web address with no quote, bracket, space or control character in it
_SAFE_LINK = re.compile(r"https?://[^\s\"'<>\\\x00-\x1f\x7f-\x9f]+")


def visible(value: object) -> str:
    """`str(value)` with every control character replaced by a visible stand-in; newlines and tabs kept."""
    return str(value).translate(_VISIBLE)


def text(value: object, style: str | Style = "") -> Text:
    """Data as a rich `Text`: never parsed as markup, control characters visible."""
    return Text(visible(value), style=style)


def _safe_style(style: Style | None) -> Style | None:
    if style is None or style.link is None or _SAFE_LINK.fullmatch(style.link):
        return style
    return style.update_link(None)


def visible_segments(console: Console, renderable: RenderableType, options: Any = None) -> Iterator[Segment]:
    """The segments `console` renders for `renderable`, each text made visible and each unsafe link dropped;
    control segments (cursor moves of a live display) pass as they are, being the console's own."""
    for segment in console.render(renderable, options or console.options):
        if segment.control:
            yield segment
        else:
            yield Segment(visible(segment.text), _safe_style(segment.style))


class _Visible:
    """A renderable shown through `visible_segments`."""

    def __init__(self, renderable: RenderableType) -> None:
        self.renderable = renderable

    def __rich_console__(self, console: Console, options: Any) -> Iterator[Segment]:
        return visible_segments(console, self.renderable, options)


class _VisibleHook(RenderHook):
    def process_renderables(self, renderables: list[ConsoleRenderable]) -> list[ConsoleRenderable]:
        return [_Visible(r) for r in renderables]


def console(**options: Any) -> Console:
    """A rich `Console` for output that shows data: no markup or emoji parsing in strings, every segment made
    visible. Keyword options go to `Console` (file, width, record, ...)."""
    out = Console(markup=False, emoji=False, **options)
    out.push_render_hook(_VisibleHook())
    return out


def escape_html(value: object) -> str:
    """Text for an HTML page: control characters visible, then `<>&"'` escaped."""
    return html.escape(visible(value), quote=True)


def rich_html(renderable: RenderableType, width: int) -> str:
    """A rich renderable as HTML spans with inline styles (what rich's `export_html` gives), but every text and
    link target escaped, and links other than plain web addresses dropped."""
    out = console(width=width, file=io.StringIO(), color_system="truecolor")
    parts = []
    for text_, style, _ in Segment.filter_control(Segment.simplify(visible_segments(out, renderable))):
        fragment = html.escape(text_, quote=True)
        if style:
            if style.link:
                fragment = f'<a href="{html.escape(style.link, quote=True)}">{fragment}</a>'
            rule = style.get_html_style(DEFAULT_TERMINAL_THEME)
            fragment = f'<span style="{html.escape(rule, quote=True)}">{fragment}</span>' if rule else fragment
        parts.append(fragment)
    return "".join(parts)


def json_text(data: Any, indent: int | None = None) -> str:
    """`data` as JSON for a terminal: Japanese kept readable (not \\u-escaped), but C1 controls and
    bidirectional overrides escaped, which `json.dumps(..., ensure_ascii=False)` writes raw."""
    return json.dumps(data, ensure_ascii=False, indent=indent).translate(_JSON_ESCAPED)
