"""DoRA through PEFT: LoRA with the weight's magnitude and direction trained apart; merges back into the base."""

from __future__ import annotations

from mikiwame.framework import hookimpl
from mikiwame.plugins.peft.lora import LoRA


class DoRA(LoRA):
    """LoRA's options (--lora-r, --lora-targets, ...) with `use_dora=True`."""

    name = "dora"
    use_dora = True


@hookimpl
def mikiwame_register_peft_methods(register):
    register(DoRA())
