"""The livedoor news corpus as a headline task: line 3 of each article is the text, its folder the label.

Reads the official `ldcc-20140209.tar.gz` as a stream (nothing is extracted; the CC BY-ND licence forbids
shipping derived files) or the extracted `text/` folder. The corpus has no split of its own, so a seeded,
stratified 80/10/10 train/validation/test split is drawn.
"""

from __future__ import annotations

import re
import tarfile
from collections.abc import Iterator
from pathlib import Path

from mikiwame.framework import hookimpl
from mikiwame.framework.config import RunConfig
from mikiwame.framework.errors import DataError
from mikiwame.framework.splits import stratified_split
from mikiwame.framework.task import Example, TaskData

DOWNLOAD = "https://www.rondhuit.com/download/ldcc-20140209.tar.gz"
ARTICLE = re.compile(r"(?:^|/)(?P<category>[^/]+)/(?P=category)-(?P<id>\d+)\.txt$")
HEADLINE_LINE = 3


def _articles_in_archive(path: Path) -> Iterator[tuple[str, str, bytes]]:
    """(member name, category, bytes) of every article member; LICENSE/README/CHANGES do not match."""
    try:
        with tarfile.open(path, "r:*") as archive:
            for member in archive:
                match = ARTICLE.search(member.name)
                if member.isfile() and match:
                    handle = archive.extractfile(member)
                    if handle is not None:
                        yield member.name, match["category"], handle.read()
    except (tarfile.TarError, EOFError, OSError) as err:
        raise DataError(
            f"{path} is not a readable tar archive ({err})",
            where="--data",
            fix=f"give the official ldcc-20140209.tar.gz ({DOWNLOAD}) or its extracted text/ folder",
        ) from None


def _articles_in_folder(root: Path) -> Iterator[tuple[str, str, bytes]]:
    if (root / "text").is_dir():
        root = root / "text"
    for file in sorted(root.glob("*/*.txt")):
        match = ARTICLE.search(file.relative_to(root).as_posix())
        if match:
            yield str(file), match["category"], file.read_bytes()


def _headline(name: str, raw: bytes) -> str:
    try:
        lines = raw.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise DataError("article is not UTF-8", where=name, fix="use the official, unmodified corpus") from None
    if len(lines) < HEADLINE_LINE or not lines[HEADLINE_LINE - 1].strip():
        raise DataError(
            f"article has no headline on line {HEADLINE_LINE} (URL, date, headline expected)",
            where=f"{name}:{HEADLINE_LINE}",
            fix="use the official, unmodified corpus",
        )
    return lines[HEADLINE_LINE - 1].strip()


class Livedoor:
    name = "livedoor"
    description = "livedoor news headlines (9 categories; --data ldcc-20140209.tar.gz or its text/ folder)"

    def load(self, config: RunConfig) -> TaskData:
        if not config.data:
            raise DataError(
                "the livedoor task needs the corpus, which mikiwame cannot ship (CC BY-ND)",
                where="--data",
                fix=f"download {DOWNLOAD} and pass --data path/to/ldcc-20140209.tar.gz (or its extracted text/)",
            )
        path = Path(config.data)
        if not path.exists():
            raise DataError(f"{path} does not exist", where="--data", fix=f"download it from {DOWNLOAD}")
        articles = _articles_in_folder(path) if path.is_dir() else _articles_in_archive(path)
        examples = [
            Example(Path(name).stem, _headline(name, raw), category, "", f"{name}:{HEADLINE_LINE}")
            for name, category, raw in articles
        ]
        if not examples:
            raise DataError(
                f"{path} holds no articles (text/<category>/<category>-<id>.txt)",
                where="--data",
                fix=f"give the official ldcc-20140209.tar.gz ({DOWNLOAD}) or its extracted text/ folder",
            )
        examples.sort(key=lambda e: (e.label, e.id))
        return TaskData(self.name, stratified_split(examples, config.split_seed, where=str(path)), str(path))


@hookimpl
def mikiwame_register_tasks(register):
    register(Livedoor())
