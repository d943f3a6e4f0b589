"""`mikiwame report RUN_DIR --format json`: the saved results and every section's data as one JSON document."""

from __future__ import annotations

import sys

from mikiwame.framework import hookimpl, inert
from mikiwame.framework.results import ReportSection, RunResults


class JsonReporter:
    name = "json"
    live = False

    def render(self, results: RunResults, sections: list[ReportSection]) -> None:
        document = {**results.to_dict(), "sections": {s.name: {"title": s.title, "data": s.data} for s in sections}}
        sys.stdout.write(inert.json_text(document, indent=2) + "\n")


@hookimpl
def mikiwame_register_reporters(register):
    register(JsonReporter())
