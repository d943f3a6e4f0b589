"""Cures for entity bias, the `entity-bias` analyzer's finding (swapping one named entity for another of its
group flips predictions more often than swapping a non-entity word): the entity plugin's two training-data steps
(plugins/tasks/entities.py), `--entities-augment entity-swap` and `--entities-mask`, as countermeasures. The options
work as before on any recipe; here they are run against the untreated run and measured by the analyzer's own
flip rate on the re-runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mikiwame.framework import hookimpl
from mikiwame.framework.countermeasure import ANALYSIS_FIGURE, OptionValuesCure, Target

ANALYZER = "entity-bias"
FLIP_RATE = ("swaps", "flip_rate", "rate")  # as the analyzer writes it (a Wilson rate)


def biased(analysis: dict[str, Any]) -> bool:
    """Entity swaps flip more than non-entity word swaps, beyond both intervals (or flip at all, with no
    baseline to compare with)."""
    swaps, baseline = analysis.get("swaps"), analysis.get("non_entity_baseline")
    if not swaps:
        return False
    ceiling = baseline["flip_rate"]["high"] if baseline else 0.0
    return swaps["flip_rate"]["low"] > ceiling


@dataclass(frozen=True)
class EntityCure(OptionValuesCure):
    analyzer: str = ANALYZER

    def targets(self, analysis: dict[str, Any], results: Any) -> list[Target]:
        if not biased(analysis):
            return []
        return [Target(self.analyzer, "entity bias", ANALYSIS_FIGURE, {"figure": list(FLIP_RATE), "lower": True})]


CURES = (
    EntityCure(
        "entity-swap",
        "add training copies with every entity swapped for another of its group (--entities-augment entity-swap)",
        (("augment", "entity-swap"),),
        ("Zmigrod et al. 2019, ACL, Counterfactual Data Augmentation for Mitigating Gender Stereotypes",),
    ),
    EntityCure(
        "mask-entities",
        "replace entities by their type token in every split (--entities-mask)",
        (("mask_entities", True),),
        ("Zhao et al. 2018, NAACL, Gender Bias in Coreference Resolution (anonymised entities)",),
    ),
)


@hookimpl
def mikiwame_register_countermeasures(register):
    for cure in CURES:
        register(cure)
