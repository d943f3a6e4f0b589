"""Reading users' CSV, TSV and JSONL files, which are often messy, into labelled examples.

Every problem becomes one `DataError` naming the file, the line and the fix: a wrong encoding (with the one
it looks like), binary content, ragged rows, missing columns (with the ones found), empty cells, a lone
surrogate escape in JSONL (`"\\ud800"`, which no UTF-8 writer downstream can encode). A UTF-8 BOM, CRLF line
ends and CSV fields of any size (the csv module stops at 128 KiB by default) simply work.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import DataError
from .task import SPLITS, Example

# The csv module refuses fields over 128 KiB; a text may be longer (framework/limits.py cuts it later). 2**31 - 1
# fits the C long the module stores the limit in on every platform (sys.maxsize overflows it on Windows).
CSV_FIELD_LIMIT = 2**31 - 1
SURROGATE = re.compile("[\ud800-\udfff]")
GUESSED_ENCODINGS = (("cp932", "Shift_JIS/CP932"), ("euc_jp", "EUC-JP"), ("utf-16", "UTF-16"))
SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "dev": "validation",
    "valid": "validation",
    "validation": "validation",
    "val": "validation",
    "test": "test",
    "eval": "test",
}


@dataclass(frozen=True)
class Row:
    line: int
    values: dict[str, str]


def _decode(path: Path, raw: bytes, encoding: str | None) -> str:
    if encoding:
        try:
            return raw.decode(encoding)
        except (LookupError, UnicodeDecodeError) as err:
            raise DataError(
                f"cannot decode with --csv-encoding {encoding}: {err}",
                where=str(path),
                fix="check the encoding (utf-8, cp932, euc_jp)",
            ) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        for codec, label in GUESSED_ENCODINGS:
            try:
                raw.decode(codec)
            except UnicodeDecodeError:
                continue
            raise DataError(
                f"not UTF-8 (byte {raw[err.start]:#04x}); it looks like {label}",
                where=f"{path}:{line}",
                fix=f"pass --csv-encoding {codec}, or convert it: iconv -f {codec} -t utf-8 {path.name}",
            ) from None
        raise DataError(
            f"not UTF-8 (byte {raw[err.start]:#04x}) and not a known Japanese encoding",
            where=f"{path}:{line}",
            fix="save the file as UTF-8",
        ) from None


def read_text_file(path: Path, encoding: str | None = None) -> str:
    path = Path(path)
    if not path.exists():
        raise DataError(f"file {path} does not exist", where="--data", fix="check the path")
    if path.is_dir():
        raise DataError(f"{path} is a directory, not a data file", where="--data", fix="give the file itself")
    raw = path.read_bytes()
    if not raw.strip():
        raise DataError(f"file {path} is empty", where=str(path), fix="give a file with a header and rows")
    nul = -1 if raw.startswith((b"\xff\xfe", b"\xfe\xff")) else raw.find(b"\x00")  # the whole file, not a prefix
    if nul >= 0:
        line = raw.count(b"\n", 0, nul) + 1
        raise DataError(
            f"{path} holds binary content (a NUL byte at offset {nul}), not text",
            where=f"{path}:{line}",
            fix="give a CSV, TSV or JSONL text file; remove the NUL bytes if the file is text",
        )
    return _decode(path, raw, encoding)


def read_rows(
    path: Path, *, delimiter: str | None = None, encoding: str | None = None, columns: Sequence[str] | None = None
) -> tuple[list[str], list[Row]]:
    """Columns and rows of a CSV/TSV or JSONL file; line numbers are 1-based. A CSV/TSV file starts with a header
    line unless `columns` names its fields (corpora such as JRTE ship without one)."""
    path = Path(path)
    text = read_text_file(path, encoding)
    if path.suffix.lower() in (".jsonl", ".ndjson") or (delimiter is None and text.lstrip().startswith("{")):
        return _read_jsonl(path, text)
    if delimiter is None:
        delimiter = {".tsv": "\t", ".csv": ","}.get(path.suffix.lower()) or _sniff(text)
    csv.field_size_limit(CSV_FIELD_LIMIT)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = list(columns) if columns else [h.strip() for h in next(reader)]
    except StopIteration:
        raise DataError(f"file {path} is empty", where=str(path)) from None
    rows = []
    for values in reader:
        line = reader.line_num
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            raise DataError(
                f"row has {len(values)} fields but {'the file has' if columns else 'the header has'} {len(header)}",
                where=f"{path}:{line}",
                fix="quote fields that contain the delimiter, or fix the row"
                + (" (is the delimiter right? pass --csv-delimiter)" if len(values) == 1 else ""),
            )
        rows.append(Row(line, dict(zip(header, values, strict=True))))
    return header, rows


def _sniff(text: str) -> str:
    try:
        return csv.Sniffer().sniff(text[:4096], delimiters=",\t;|").delimiter
    except csv.Error:
        return ","


def _read_jsonl(path: Path, text: str) -> tuple[list[str], list[Row]]:
    """Lines split on newline only: JSON strings may hold U+2028 and other characters `splitlines` breaks at.
    Values become strings; a column mixing JSON integers and other numbers is refused, since 1 and 1.0 would
    become two different labels."""
    columns: dict[str, None] = {}
    number_kinds: dict[str, tuple[type, int]] = {}
    rows = []
    for line, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as err:
            raise DataError(
                f"not valid JSON ({err.msg})", where=f"{path}:{line}", fix="one JSON object per line"
            ) from None
        if not isinstance(obj, dict):
            raise DataError("each line must be a JSON object", where=f"{path}:{line}")
        _refuse_surrogates(path, line, obj)
        columns.update(dict.fromkeys(obj))
        for key, value in obj.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                first = number_kinds.setdefault(key, (type(value), line))
                if first[0] is not type(value):
                    raise DataError(
                        f"column {key!r} mixes JSON integers and decimals ({value!r} here, a "
                        f"{first[0].__name__} on line {first[1]}): 1 and 1.0 would be two different labels",
                        where=f"{path}:{line}",
                        fix='write every value of the column the same way (1, or "1")',
                    )
        rows.append(Row(line, {k: "" if v is None else str(v) for k, v in obj.items()}))
    return list(columns), rows


def _refuse_surrogates(path: Path, line: int, obj: dict[str, object]) -> None:
    """JSON may escape half of a UTF-16 pair (`"\\ud800"`); Python keeps it as a character that no file, cache
    or terminal write can encode, so it would fail as a UnicodeEncodeError far from this line."""
    for key, value in obj.items():
        for found in (key, json.dumps(value, ensure_ascii=False)):
            if SURROGATE.search(found):
                raise DataError(
                    f"column {key!r} holds a lone surrogate escape (half of a UTF-16 pair, such as \\ud800), "
                    "which is not a character",
                    where=f"{path}:{line}",
                    fix="remove the escape, or write the full pair (\\ud83d\\ude00 for 😀)",
                )


def require_columns(path: Path, header: Sequence[str], wanted: dict[str, str | None]) -> None:
    for option, column in wanted.items():
        if column is not None and column not in header:
            raise DataError(
                f"column {column!r} not found; the columns are: {', '.join(header)}",
                where=str(path),
                fix=f"pass {option} with one of those names",
            )


def rows_to_examples(
    path: Path,
    rows: Sequence[Row],
    *,
    text: str,
    label: str,
    id_column: str | None = None,
    split: str | None = None,
    label_map: Mapping[str, str] | None = None,
) -> list[Example]:
    examples: list[Example] = []
    first_of: dict[str, Example] = {}
    for row in rows:
        where = f"{path}:{row.line}"
        value, gold = row.values.get(text, ""), row.values.get(label, "").strip()
        if not value.strip():
            raise DataError(f"empty text in column {text!r}", where=where, fix="fill the text or remove the row")
        if not gold:
            raise DataError(f"empty label in column {label!r}", where=where, fix="fill the label or remove the row")
        if label_map is not None:
            if gold not in label_map:
                raise DataError(
                    f"unknown label {gold!r}", where=where, fix=f"this task's labels are {', '.join(label_map)}"
                )
            gold = label_map[gold]
        part = ""
        if split is not None:
            part = SPLIT_ALIASES.get(row.values.get(split, "").strip().lower(), "")
            if not part:
                raise DataError(
                    f"split value {row.values.get(split, '')!r} is not one of {', '.join(SPLITS)}",
                    where=where,
                    fix="use train, validation (or dev) and test",
                )
        ident = row.values.get(id_column, "").strip() if id_column else ""
        example = Example(ident or f"{path.stem}:{row.line}", value.strip(), gold, part, where)
        first = first_of.setdefault(example.id, example)  # one pass: a corpus of 100k rows is checked in a blink
        if first is not example:
            raise DataError(
                f"id {example.id!r} appears more than once (first at {first.source})",
                where=where,
                fix="make the id column unique",
            )
        examples.append(example)
    return examples
