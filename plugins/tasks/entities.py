"""The two entity training-data steps, `--entities-augment entity-swap` (counterfactual data augmentation) and
`--entities-mask` (entities replaced by type tokens in every split, so training and evaluation see the same
thing), and the entity options (`--entities FILE`, a user's own list). The lists, swaps and masking they use
are framework/entities.py's, shared with the entity-bias analyzer."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, replace
from typing import ClassVar

from mikiwame.framework import hookimpl
from mikiwame.framework.config import RunConfig
from mikiwame.framework.entities import EntityLists, load_entity_lists, mask_entities, swap
from mikiwame.framework.options import option, read_options
from mikiwame.framework.task import TaskData

AUGMENT_CHOICES = ("none", "entity-swap")
DEFAULT_COPIES = 3


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
