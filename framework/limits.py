"""Texts are cut to `MAX_TEXT_CHARS` characters before MeCab sees them, with a message saying where.

MeCab (fugashi + unidic-lite) kills the process with SIGSEGV and no message on one text of a few MB: measured
here, 1,000,000 × "あ" (3 MB) crashes and 900,000 does not; 2,000,000 characters of ordinary news sentences
(6 MB) crash too. Every tokenizer of this project (the models' MeCab + WordPiece, `framework/japanese.py` for
analyzers, the classifiers' word lists) runs MeCab, so a text is cut where it enters mikiwame, where its file
and line are still known:

- a task's data, after plugins transformed it (`runner.prepare`): cut, and the run's notices say which texts;
- `mikiwame predict`'s text arguments and `--file` lines: cut, with a warning naming each;
- a run directory's `predictions.jsonl` (`analyze`, `report`): a run mikiwame wrote never holds a longer
  text, so one is refused with a message naming the file and line.

100,000 characters is at least nine times below the smallest crash seen (400 KB in UTF-8 at most, against
2.7 MB that still worked) and far more than a classifier reads: a transformer sees 512 tokens at most, and a
livedoor article has about 1,000 to 10,000 characters.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from .runfiles import damaged
from .task import TaskData

MAX_TEXT_CHARS = 100_000
SHOWN = 5  # places named in one message; the rest are counted


def cut_message(places: Sequence[tuple[str, int]]) -> str:
    """One warning for every text cut: the first places (file:line or argument) with their lengths, a count."""
    named = ", ".join(f"{where} ({length:,} characters)" for where, length in places[:SHOWN])
    more = f" and {len(places) - SHOWN} more" if len(places) > SHOWN else ""
    return (
        f"{len(places)} text(s) longer than {MAX_TEXT_CHARS:,} characters cut to that length before tokenization "
        f"(MeCab crashes on texts of a few MB; docs/reliability.md): {named}{more}"
    )


def cut_texts(texts: Sequence[str], places: Sequence[str]) -> tuple[list[str], str | None]:
    """`texts` each cut to `MAX_TEXT_CHARS`, and the warning naming the `places` of those cut (None: none was)."""
    long = [(where, len(text)) for text, where in zip(texts, places, strict=True) if len(text) > MAX_TEXT_CHARS]
    return [text[:MAX_TEXT_CHARS] for text in texts], cut_message(long) if long else None


def cut_task_data(data: TaskData) -> tuple[TaskData, str | None]:
    """The task's data with every text cut to `MAX_TEXT_CHARS`, and the warning naming the examples cut."""
    places = [e.source or f"example {e.id}" for e in data.examples]
    texts, warning = cut_texts([e.text for e in data.examples], places)
    if warning is None:
        return data, None
    examples = [dataclasses.replace(e, text=t) for e, t in zip(data.examples, texts, strict=True)]
    return dataclasses.replace(data, examples=examples), warning


def refuse_long_received_texts(rows: Sequence[dict[str, object]], path: Path) -> None:
    """A run's own texts were cut when it trained: a longer one in a received file was put there afterwards."""
    for number, row in enumerate(rows, start=1):
        text = row.get("text")
        if isinstance(text, str) and len(text) > MAX_TEXT_CHARS:
            raise damaged(
                path,
                f"row {number} holds a text of {len(text):,} characters, longer than the {MAX_TEXT_CHARS:,} a "
                "run keeps (MeCab crashes on texts of a few MB)",
            )
