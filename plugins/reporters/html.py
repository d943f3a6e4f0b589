"""`mikiwame report RUN_DIR --format html`: one self-contained report.html in the run directory.

Every section comes from the report-section hook, like the terminal's: its `html` fragment, else rich's HTML
export of its `rich` renderable, else its data as JSON, so an outside plugin's section always shows. CSS and
the one script (table filters) are inline and figures are embedded, so the file opens offline and can be mailed.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from mikiwame.framework import hookimpl, inert
from mikiwame.framework import html as h
from mikiwame.framework.results import ReportSection, RunResults

FILE_NAME = "report.html"
FONTS = '"Noto Sans CJK JP", "Noto Sans JP", "IPAexGothic", "Hiragino Sans", "Yu Gothic", "Meiryo", sans-serif'
MONO = '"Noto Sans Mono CJK JP", "IPAexGothic", "Noto Sans CJK JP", monospace'

STYLE = f"""
body {{ font-family: {FONTS}; margin: 0 auto; max-width: 1100px; padding: 1rem 2rem; color: #1f2937;
  line-height: 1.5; }}
h1 {{ font-size: 1.6rem; margin-bottom: 0.2rem; }}
h2 {{ border-bottom: 2px solid #e5e7eb; padding-bottom: 0.2rem; margin-top: 2rem; }}
section {{ margin-bottom: 1.5rem; }}
table {{ border-collapse: collapse; margin: 0.6rem 0; font-size: 0.9rem; }}
figcaption {{ font-weight: bold; padding: 0.3rem 0 0; font-size: 0.9rem; }}
th, td {{ border: 1px solid #d1d5db; padding: 0.2rem 0.5rem; vertical-align: top; text-align: left; }}
thead th {{ background: #f3f4f6; }}
table.kv th {{ background: #f9fafb; }}
.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
pre {{ font-family: {MONO}; background: #f9fafb; padding: 0.6rem; overflow-x: auto; font-size: 0.85rem; }}
pre.rich {{ background: #fff; border: 1px solid #e5e7eb; }}
.good {{ color: #15803d; font-weight: bold; }}
.bad {{ color: #b91c1c; font-weight: bold; }}
.note {{ color: #6b7280; }}
.warning {{ color: #92400e; background: #fef3c7; padding: 0.2rem 0.4rem; }}
.banner {{ background: #b91c1c; color: #fff; font-size: 1.2rem; font-weight: bold; padding: 0.8rem 1rem; }}
nav ol {{ columns: 2; font-size: 0.95rem; }}
figure {{ margin: 0.6rem 0; }}
figure img {{ max-width: 100%; max-height: 36rem; border: 1px solid #e5e7eb; }}
tr.kept td {{ font-weight: bold; background: #f0fdf4; }}
.scroll {{ max-height: 32rem; overflow-y: auto; border: 1px solid #e5e7eb; }}
.scroll table {{ margin: 0; }}
tr.error td:first-child {{ border-left: 4px solid #b91c1c; }}
.filter input {{ font: inherit; padding: 0.2rem 0.4rem; width: 22rem; }}
.filter .count {{ color: #6b7280; margin-left: 0.5rem; }}
.attributed .word {{ padding: 0 1px; border-radius: 2px; }}
.attributed .marked {{ outline: 2px solid #111827; }}
.legend span {{ padding: 0 0.3rem; }}
"""

# Hides the rows of a filtered table that do not contain the query (case-insensitive) and updates the count.
SCRIPT = """
document.querySelectorAll("input[data-filter]").forEach(function (box) {
  var table = document.getElementById(box.dataset.filter);
  var count = document.querySelector('[data-count-for="' + box.dataset.filter + '"]');
  var rows = Array.prototype.slice.call(table.tBodies[0].rows);
  box.addEventListener("input", function () {
    var query = box.value.trim().toLowerCase();
    var shown = 0;
    rows.forEach(function (row) {
      var match = !query || row.textContent.toLowerCase().indexOf(query) >= 0;
      row.hidden = !match;
      shown += match ? 1 : 0;
    });
    count.textContent = shown + " of " + rows.length + " shown";
  });
});
"""


def section_html(section: ReportSection) -> h.Html:
    """The section's own HTML, else rich's rendering of it, else its data as JSON."""
    if section.html is not None:
        body = h.Html(section.html())
    elif section.rich is not None:
        body = h.rich_html(section.rich())
    else:
        body = h.json_block(section.data)
    return h.tag("section", h.join([h.tag("h2", section.title), body]), id=f"section-{section.name}")


def page(results: RunResults, sections: list[ReportSection]) -> str:
    info = results.model_info
    banner = (
        [h.tag("div", f"FALLBACK MODEL: {info.get('fallback_reason', '')}", "banner", role="alert")]
        if info.get("fallback")
        else []
    )
    contents = h.tag(
        "nav",
        h.tag("ol", h.join(h.tag("li", h.tag("a", s.title, href=f"#section-{s.name}")) for s in sections)),
        aria_label="contents",
    )
    title = f"mikiwame report: {results.name}"
    m = results.metrics
    subtitle = f"task {m.get('task', results.config.get('task', '?'))}, model {info.get('name', '?')}"
    body = h.join(
        [
            *banner,
            h.tag("h1", title),
            h.paragraph(f"{subtitle}; run directory {results.directory}", h.NOTE),
            contents,
            *(section_html(s) for s in sections),
        ]
    )
    return (
        '<!DOCTYPE html>\n<html lang="ja">\n<head>\n<meta charset="utf-8">\n'
        '<link rel="icon" href="data:,">\n'  # no favicon request: the page needs nothing outside itself
        f"<title>{h.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n"
        f"<body>\n{body}\n<script>{SCRIPT}</script>\n</body>\n</html>\n"
    )


def write_atomically(path: Path, text: str) -> None:
    """Write beside the target, then rename: a reader never sees half a report."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(temporary, 0o644)  # mkstemp makes it private; a report is for reading
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class HtmlReporter:
    name = "html"
    live = False

    def render(self, results: RunResults, sections: list[ReportSection]) -> Path:
        path = results.directory / FILE_NAME
        write_atomically(path, page(results, sections))
        print(inert.visible(path))
        return path


@hookimpl
def mikiwame_register_reporters(register):
    register(HtmlReporter())
