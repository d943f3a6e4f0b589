"""The livedoor news article bodies of the training split only, for domain pre-training without leakage: no
body of an article whose headline is in the validation or test split of the headline task is returned.

The split comes from the `livedoor` task plugin when one is registered (its own split, with the same seed);
otherwise the archive is read here and split with the framework's `stratified_split` and that seed, the way the
task does. Either way, articles are matched to splits by headline, and a headline that occurs in a held-out
split keeps its body out even when another article with that headline is in training. The corpus licence
forbids redistribution: the text is only read from the user's path, never written into the project.
"""

from __future__ import annotations

import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mikiwame.framework.config import RunConfig
from mikiwame.framework.errors import DataError
from mikiwame.framework.splits import stratified_split
from mikiwame.framework.task import Example

NOT_ARTICLES = ("LICENSE.txt", "README.txt", "CHANGES.txt")


@dataclass(frozen=True)
class Article:
    member: str
    category: str
    headline: str
    body: str


def _is_article(member: tarfile.TarInfo) -> bool:
    parts = member.name.split("/")
    return member.isfile() and len(parts) == 3 and parts[-1].endswith(".txt") and parts[-1] not in NOT_ARTICLES


def read_articles(path: Path) -> list[Article]:
    """Every article of the official archive (text/<category>/<category>-<id>.txt), in member-name order.
    Line 1 is the URL, line 2 the date, line 3 the headline, the rest the body."""
    try:
        with tarfile.open(path, "r:*") as archive:
            # read in archive order (a gzip stream cannot seek back cheaply), then sort by name
            texts = sorted((m.name, archive.extractfile(m).read().decode("utf-8")) for m in archive if _is_article(m))
    except (OSError, tarfile.TarError) as err:
        raise DataError(f"cannot read {path} as the livedoor archive: {err}", where="--text-from") from None
    articles = []
    for name, text in texts:
        lines = text.splitlines()
        if len(lines) < 3:
            raise DataError(f"{path}:{name}: fewer than 3 lines, not a livedoor article", where="--text-from")
        body = "\n".join(line for line in lines[3:] if line.strip())
        articles.append(Article(name, name.split("/")[1], lines[2].strip(), body))
    if not articles:
        raise DataError(f"{path} holds no livedoor articles (text/<category>/*.txt)", where="--text-from")
    return articles


def headline_splits(path: Path, seed: int, plugins: object | None) -> dict[str, set[str]]:
    """split -> headlines, from the `livedoor` task if registered, else from the same stratified split."""
    tasks = getattr(plugins, "tasks", None)
    if tasks is not None and "livedoor" in tasks:
        data = tasks.get("livedoor").load(RunConfig(task="livedoor", data=str(path), seed=seed))
        examples = data.examples
    else:
        examples = stratified_split([Example(a.member, a.headline, a.category, "") for a in read_articles(path)], seed)
    out: dict[str, set[str]] = {"train": set(), "validation": set(), "test": set()}
    for e in examples:
        out[e.split].add(e.text)
    return out


def training_bodies(
    path: Path, seed: int | Sequence[int], plugins: object | None = None
) -> tuple[list[str], dict[str, int]]:
    """Bodies of training-split articles and a count of what was kept and why the rest was not. Several seeds
    keep only the articles in the training split of every one of them, so one pre-trained base serves the runs
    of all those seeds (each draws its own split) without having read a body of any of their held-out titles."""
    train, held_out = None, set()
    for one in [seed] if isinstance(seed, int) else seed:
        splits = headline_splits(path, one, plugins)
        train = splits["train"] if train is None else train & splits["train"]
        held_out |= splits["validation"] | splits["test"]
    bodies, skipped = [], 0
    for article in read_articles(path):
        if article.headline in train and article.headline not in held_out and article.body:
            bodies.append(article.body)
        else:
            skipped += 1
    split_source = "livedoor task" if getattr(plugins, "tasks", None) and "livedoor" in plugins.tasks else "own"
    return bodies, {"articles_used": len(bodies), "articles_left_out": skipped, "split_from": split_source}
