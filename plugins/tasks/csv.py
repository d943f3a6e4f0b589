"""Any labelled CSV, TSV or JSONL file as a task: the user's own data, named columns, their split or ours.

Without `--csv-split-column` a seeded, stratified 80/10/10 train/validation/test split is drawn. Encoding and
delimiter are detected (UTF-8 with or without BOM; delimiter from the suffix or sniffed) or given.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mikiwame.framework import hookimpl
from mikiwame.framework.config import RunConfig
from mikiwame.framework.errors import ConfigError, DataError
from mikiwame.framework.options import option, read_options
from mikiwame.framework.splits import stratified_split
from mikiwame.framework.tables import read_rows, require_columns, rows_to_examples
from mikiwame.framework.task import TaskData

DELIMITER_NAMES = {"\\t": "\t", "tab": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}


def delimiter_option(value: str | None) -> str | None:
    """`--csv-delimiter`: one character, or a name for one that is awkward to type (tab, \\t)."""
    if value is None:
        return None
    delimiter = DELIMITER_NAMES.get(value.lower(), value)
    if len(delimiter) != 1:
        raise ConfigError(
            f"--csv-delimiter {value!r} is not one character", fix="use , or ; or | or tab (also written \\t)"
        )
    return delimiter


class CsvTask:
    name = "csv"
    description = "your own CSV/TSV/JSONL file (--data FILE, --csv-text-column, --csv-label-column, --csv-split-column)"

    def load(self, config: RunConfig) -> TaskData:
        if not config.data:
            raise DataError(
                "the csv task needs a data file", where="--data", fix="pass --data path/to/file.csv (or .tsv, .jsonl)"
            )
        path, options = Path(config.data), read_options(CsvOptions, config.options)
        columns = {
            "--csv-text-column": options.text_column,
            "--csv-label-column": options.label_column,
            "--csv-id-column": options.id_column,
            "--csv-split-column": options.split_column,
        }
        header, rows = read_rows(path, delimiter=delimiter_option(options.delimiter), encoding=options.encoding)
        if not rows:
            raise DataError(f"file {path} has a header but no rows", where=str(path), fix="add labelled rows")
        require_columns(path, header, columns)
        examples = rows_to_examples(
            path,
            rows,
            text=columns["--csv-text-column"],
            label=columns["--csv-label-column"],
            id_column=columns["--csv-id-column"],
            split=columns["--csv-split-column"],
        )
        if columns["--csv-split-column"] is None:
            examples = stratified_split(examples, config.split_seed, where=str(path))
        return TaskData(self.name, examples, str(path))


@hookimpl
def mikiwame_register_tasks(register):
    register(CsvTask())


@dataclass
class CsvOptions:
    """csv task (--task csv)"""

    text_column: str = option("text", "column holding the text", flag="--csv-text-column")
    label_column: str = option("label", "column holding the label", flag="--csv-label-column")
    id_column: str | None = option(None, "column of unique ids (default: file:line)", flag="--csv-id-column")
    split_column: str | None = option(
        None,
        "column of train/validation(dev)/test values (default: a seeded stratified 80/10/10 split)",
        flag="--csv-split-column",
    )
    encoding: str | None = option(None, "file encoding, e.g. cp932 (default: UTF-8, BOM or not)", flag="--csv-encoding")
    delimiter: str | None = option(
        None, "field delimiter: , ; | or tab (default: from the suffix)", flag="--csv-delimiter"
    )


@hookimpl
def mikiwame_options():
    return CsvOptions
