"""A cure for entity bias in a prompt-based run (`--model cloze` or `icl`, which train nothing): an instruction
written first in every prompt (`--cloze-instruction`, plugins/models/prompting.py), by default the one the
course's assignment names. The re-runs score the same texts with and without it, and the `entity-bias` analyzer
measures the flip rate on each. (Shortcut findings cannot come from such a run: the `shortcuts` analyzer needs
gradients, and a prompt-based model has none.)"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mikiwame.framework import hookimpl
from mikiwame.framework.countermeasure import Target

from .entity_bias_cures import EntityCure

DEFAULT_INSTRUCTION = "判断は固有名詞に依存せず内容全体で行え。"
PROMPT_MODELS = ("cloze", "icl")


@dataclass(frozen=True)
class InstructionCure(EntityCure):
    """The entity-bias cure of a prompt-based run that was prompted without an instruction."""

    def targets(self, analysis: dict[str, Any], results: Any) -> list[Target]:
        config = results.config
        if config.get("model") not in PROMPT_MODELS or config.get("options", {}).get("prompt_instruction"):
            return []
        return super().targets(analysis, results)


CURE = InstructionCure(
    "prompt-instruction",
    f"write 「{DEFAULT_INSTRUCTION}」 first in every prompt (--cloze-instruction)",
    (("prompt_instruction", DEFAULT_INSTRUCTION),),
    (
        "Si et al. 2023, ICLR, Prompting GPT-3 To Be Reliable (instructions that reduce social biases)",
        "Ganguli et al. 2023, arXiv 2302.07459, The Capacity for Moral Self-Correction in Large Language Models",
    ),
)


@hookimpl
def mikiwame_register_countermeasures(register):
    register(CURE)
