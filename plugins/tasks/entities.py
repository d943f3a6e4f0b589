"""Entities for the bias probes and their mitigations: our shipped lists (data/entities/), a user's own list
(`--entities FILE`), swaps that replace one entity's character span by another of the same group, and the
two training-data steps `--entities-augment entity-swap` (counterfactual data augmentation) and `--entities-mask`
(entities replaced by type tokens in every split, so training and evaluation see the same thing)."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import ClassVar

from mikiwame.data import bundled
from mikiwame.framework import hookimpl
from mikiwame.framework.config import RunConfig
from mikiwame.framework.errors import ConfigError
from mikiwame.framework.japanese import ORGANISATION, PERSON, PLACE, Span, find_entities
from mikiwame.framework.options import option, read_options
from mikiwame.framework.tables import read_rows, require_columns
from mikiwame.framework.task import TaskData

LISTS = bundled("entities")
TYPE_TOKENS = {PERSON: "[人名]", PLACE: "[地名]", ORGANISATION: "[組織]"}
AUGMENT_CHOICES = ("none", "entity-swap")
DEFAULT_COPIES = 3


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


def whole_word_rank(tokenizer, name: str) -> tuple[int, int]:
    """0 for a name the tokenizer keeps as whole vocabulary words, 1 for word pieces, 2 for [UNK]."""
    tokens = tokenizer.tokenize(name)
    if tokenizer.unk_token in tokens:
        return (2, len(tokens))
    return (int(any(t.startswith("##") for t in tokens)), len(tokens))


def choose_substitutes(entity: Span, pool: list[str], k: int, rng: random.Random, tokenizer=None) -> list[str]:
    """Up to k other names of the entity's group, whole vocabulary words first (a name that becomes [UNK]
    measures nothing), at random within a tier."""
    candidates = [name for name in pool if name != entity.text]
    rng.shuffle(candidates)
    if tokenizer is not None:
        candidates.sort(key=lambda name: whole_word_rank(tokenizer, name)[0])
    return candidates[:k]


def augment_with_swaps(data: TaskData, lists: EntityLists, copies: int, seed: int) -> TaskData:
    """Counterfactual data augmentation: for each training text with entities, `copies` copies with every
    entity replaced by another of its group, same label. Names come from the group's entities seen in the
    training texts (so every seen entity is also swapped *into* other texts), then the shipped lists."""
    rng = random.Random(seed)
    train = data.split("train")
    found = {e.id: lists.entities(e.text) for e in train}
    seen: dict[str, list[str]] = defaultdict(list)
    for spans in found.values():
        for span in spans:
            if span.text not in seen[span.group]:
                seen[span.group].append(span.text)
    added = []
    for example in train:
        spans = found[example.id]
        if not spans:
            continue
        for j in range(copies):
            text = example.text
            for span in sorted(spans, key=lambda s: -s.start):
                pool = [n for n in seen[span.group] if n != span.text] or lists.pools.get(span.group, [])
                choices = [n for n in pool if n != span.text]
                if choices:
                    text = swap(text, span, rng.choice(choices))
            added.append(replace(example, id=f"{example.id}~swap{j + 1}", text=text))
    return TaskData(data.name, data.examples + added, data.source, data.labels)


def mask_entities(text: str, lists: EntityLists) -> str:
    """Each entity replaced by its type token ([人名], [地名], [組織]; a user's type as [type])."""
    for span in sorted(lists.entities(text), key=lambda s: -s.start):
        text = swap(text, span, TYPE_TOKENS.get(span.kind, f"[{span.kind}]"))
    return text


@hookimpl
def mikiwame_transform_data(config: RunConfig, data: TaskData) -> TaskData | None:
    options = read_options(EntityOptions, config.options)
    augment, masking = options.augment, options.mask_entities
    if augment == "none" and not masking:
        return None
    lists = load_entity_lists(options.entities)
    if augment == "entity-swap":
        copies = options.augment_copies
        data = augment_with_swaps(data, lists, copies, config.seed)
    if masking:
        examples = [replace(e, text=mask_entities(e.text, lists)) for e in data.examples]
        data = TaskData(data.name, examples, data.source, data.labels)
    return data


@dataclass
class EntityOptions:
    """entities (entity-bias analyzer and mitigations)"""

    SHOWN_WITH: ClassVar[tuple[str, ...]] = ("entity-bias",)

    entities: str | None = option(None, "TSV with columns name, type[, group]: your own entities")
    augment: str = option(
        "none", "entity-swap: add swapped training copies", choices=tuple(AUGMENT_CHOICES), flag="--entities-augment"
    )
    augment_copies: int = option(DEFAULT_COPIES, "swapped copies per text", flag="--entities-augment-copies")
    mask_entities: bool = option(
        False, "replace entities by [人名]/[地名]/[組織] in every split", flag="--entities-mask"
    )


@hookimpl
def mikiwame_options():
    return EntityOptions


class MaskedInputs:
    """A predictor of a `--entities-mask` run seen from outside: texts are masked as in training before they
    reach the model, so swap probes on the original texts measure what the masked model really does."""

    def __init__(self, predictor, lists: EntityLists) -> None:
        self.predictor, self.lists = predictor, lists
        self.labels, self.tokenizer = predictor.labels, predictor.tokenizer

    def probabilities(self, texts: list[str]):
        return self.predictor.probabilities([mask_entities(t, self.lists) for t in texts])
