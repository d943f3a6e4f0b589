"""The bundled headlines task: 660 Japanese news headlines written for this project, 6 categories, with a
fixed train/validation/test split (data/headlines/README.md)."""

from __future__ import annotations

from pathlib import Path

from mikiwame.data import bundled
from mikiwame.framework import hookimpl
from mikiwame.framework.config import RunConfig
from mikiwame.framework.errors import DataError
from mikiwame.framework.tables import read_rows, require_columns, rows_to_examples
from mikiwame.framework.task import TaskData

BUNDLED = bundled("headlines", "headlines.tsv")


class Headlines:
    name = "headlines"
    description = "bundled Japanese news headlines (6 categories, fixed split); --data for another TSV like it"

    def load(self, config: RunConfig) -> TaskData:
        path = Path(config.data) if config.data else BUNDLED
        if not config.data and not BUNDLED.is_file():
            raise DataError(
                f"bundled headlines not found at {BUNDLED}",
                fix="the installation is incomplete: reinstall mikiwame, or pass --data",
            )
        header, rows = read_rows(path)
        columns = {"--csv-text-column": "text", "--csv-label-column": "label", "--csv-split-column": "split"}
        require_columns(path, header, columns)
        examples = rows_to_examples(
            path, rows, text="text", label="label", id_column="id" if "id" in header else None, split="split"
        )
        return TaskData(self.name, examples, str(path))


@hookimpl
def mikiwame_register_tasks(register):
    register(Headlines())
