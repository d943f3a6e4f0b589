"""JRTE sentiment (`pn.tsv`, Rakuten Travel hotel reviews): three labels, the corpus's own train/dev/test split.

The file has no header; its columns are id, label (1/0/-1), text, judges (annotator votes as JSON) and usage
(train/dev/test). The labels are imbalanced (about 61/24/15%): look at macro-F1, and try
`--class-weights balanced`.

The votes are kept as the slice "annotator votes": `unanimous` or `split` (the annotators disagreed). Errors
concentrate where people disagree, and the errors analyzer's accuracy by slice shows by how much.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from mikiwame.framework import hookimpl
from mikiwame.framework.config import RunConfig
from mikiwame.framework.errors import DataError
from mikiwame.framework.tables import Row, read_rows, rows_to_examples
from mikiwame.framework.task import TaskData

COLUMNS = ("id", "label", "text", "judges", "usage")
LABELS = {"1": "positive", "0": "neutral", "-1": "negative"}
SOURCE = "https://github.com/megagonlabs/jrte-corpus (data/pn.tsv)"
VOTES = "annotator votes"


def agreement(path: Path, row: Row) -> tuple[tuple[str, str], ...]:
    """The slice of a row's votes: `unanimous` when every annotator gave the same label, else `split`; from
    the judges column, e.g. {"0": 3} or {"1": 2, "0": 1}. No votes recorded ({}): no slice."""
    raw = row.values.get("judges", "")
    try:
        votes = json.loads(raw)
    except json.JSONDecodeError:
        votes = None
    if not isinstance(votes, dict) or not all(type(n) is int and n > 0 for n in votes.values()):
        raise DataError(
            f'the judges column {raw[:80]!r} is not annotator votes such as {{"0": 3}}',
            where=f"{path}:{row.line}",
            fix="give the corpus's own pn.tsv, unchanged",
        )
    if not votes:
        return ()
    return ((VOTES, "unanimous" if len(votes) == 1 else "split"),)


class JrtePn:
    name = "jrte-pn"
    description = "JRTE hotel-review sentiment, positive/neutral/negative (--data pn.tsv; its own split)"

    def load(self, config: RunConfig) -> TaskData:
        if not config.data:
            raise DataError(
                "the jrte-pn task needs the corpus file pn.tsv, which mikiwame cannot ship (CC BY-NC-SA)",
                where="--data",
                fix=f"download it from {SOURCE} and pass --data path/to/pn.tsv",
            )
        path = Path(config.data)
        _, rows = read_rows(path, delimiter="\t", columns=COLUMNS)
        examples = rows_to_examples(
            path, rows, text="text", label="label", id_column="id", split="usage", label_map=LABELS
        )
        voted = [replace(e, slices=agreement(path, row)) for e, row in zip(examples, rows, strict=True)]
        return TaskData(self.name, voted, str(path))


@hookimpl
def mikiwame_register_tasks(register):
    register(JrtePn())
