"""Entities in Japanese text for the bias probes and their mitigations: our shipped lists (data/entities/) plus
a user's own (`--entities FILE`), swaps that replace one entity's character span by another of its group,
masking by type tokens, and a predictor that masks what it is given. Shared by the entities data steps
(plugins/tasks/entities.py), the entity-bias analyzer and the mitigation study."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from mikiwame.data import bundled

from .errors import ConfigError
from .japanese import ORGANISATION, PERSON, PLACE, Span, find_entities
from .tables import read_rows, require_columns

LISTS = bundled("entities")
TYPE_TOKENS = {PERSON: "[人名]", PLACE: "[地名]", ORGANISATION: "[組織]"}


@dataclass
class EntityLists:
    """`gazetteer`: surfaces detected by string match (organisations and a user's list) → (type, group);
    `pools`: group → the names a swap may put in."""

    gazetteer: dict[str, tuple[str, str]] = field(default_factory=dict)
    pools: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def add(self, name: str, kind: str, group: str, *, detect: bool) -> None:
        if detect:
            self.gazetteer[name] = (kind, group)
        if name not in self.pools[group]:
            self.pools[group].append(name)

    def entities(self, text: str) -> list[Span]:
        return find_entities(text, self.gazetteer)


def _read_list(path: Path, lists: EntityLists, *, detect: bool | None) -> None:
    header, rows = read_rows(path)
    require_columns(path, header, {"name": "name", "type": "type"})
    for row in rows:
        name, kind = row.values["name"].strip(), row.values["type"].strip()
        group = (row.values.get("group") or "").strip() or kind
        lists.add(name, kind, group, detect=kind == ORGANISATION if detect is None else detect)


def load_entity_lists(user_file: str | Path | None = None) -> EntityLists:
    """The shipped lists, plus the user's (every entry of which is detected by string match)."""
    lists = EntityLists()
    for path in sorted(LISTS.glob("*.tsv")):
        _read_list(path, lists, detect=None)
    if user_file:
        path = Path(user_file)
        if not path.is_file():
            raise ConfigError(f"entity list {path} does not exist", where="--entities", fix="give a TSV file")
        _read_list(path, lists, detect=True)
    return lists


def swap(text: str, entity: Span, substitute: str) -> str:
    """Replace exactly the entity's character span; the rest of the text is untouched."""
    return text[: entity.start] + substitute + text[entity.end :]


def whole_word_rank(tokenizer: Any, name: str) -> tuple[int, int]:
    """0 for a name the tokenizer keeps as whole vocabulary words, 1 for word pieces, 2 for [UNK]."""
    tokens = tokenizer.tokenize(name)
    if tokenizer.unk_token in tokens:
        return (2, len(tokens))
    return (int(any(t.startswith("##") for t in tokens)), len(tokens))


def choose_substitutes(entity: Span, pool: list[str], k: int, rng: random.Random, tokenizer: Any = None) -> list[str]:
    """Up to k other names of the entity's group, whole vocabulary words first (a name that becomes [UNK]
    measures nothing), at random within a tier."""
    candidates = [name for name in pool if name != entity.text]
    rng.shuffle(candidates)
    if tokenizer is not None:
        candidates.sort(key=lambda name: whole_word_rank(tokenizer, name)[0])
    return candidates[:k]


def mask_entities(text: str, lists: EntityLists) -> str:
    """Each entity replaced by its type token ([人名], [地名], [組織]; a user's type as [type])."""
    for span in sorted(lists.entities(text), key=lambda s: -s.start):
        text = swap(text, span, TYPE_TOKENS.get(span.kind, f"[{span.kind}]"))
    return text


class MaskedInputs:
    """A predictor of a `--entities-mask` run seen from outside: texts are masked as in training before they
    reach the model, so swap probes on the original texts measure what the masked model really does."""

    def __init__(self, predictor: Any, lists: EntityLists) -> None:
        self.predictor, self.lists = predictor, lists
        self.labels, self.tokenizer = predictor.labels, predictor.tokenizer

    def probabilities(self, texts: list[str]) -> torch.Tensor:
        return self.predictor.probabilities([mask_entities(t, self.lists) for t in texts])
