"""JRTE sentiment (`pn.tsv`, Rakuten Travel hotel reviews): three labels, the corpus's own train/dev/test split.

The file has no header; its columns are id, label (1/0/-1), text, judges (annotator votes as JSON) and usage
(train/dev/test). The labels are imbalanced (about 61/24/15%): look at macro-F1, and try
`--class-weights balanced`.
"""

from __future__ import annotations

from pathlib import Path

from mikiwame.framework import hookimpl
from mikiwame.framework.config import RunConfig
from mikiwame.framework.errors import DataError
from mikiwame.framework.tables import read_rows, rows_to_examples
from mikiwame.framework.task import TaskData

COLUMNS = ("id", "label", "text", "judges", "usage")
LABELS = {"1": "positive", "0": "neutral", "-1": "negative"}
SOURCE = "https://github.com/megagonlabs/jrte-corpus (data/pn.tsv)"


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
        return TaskData(self.name, examples, str(path))


@hookimpl
def mikiwame_register_tasks(register):
    register(JrtePn())
