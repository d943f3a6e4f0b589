"""Hold the frozen linear layers of a PEFT model in the mixed-precision dtype.

Under autocast every `Linear` casts its fp32 weight and bias to bf16 (or fp16) on every call: for a frozen
base that is the whole model re-cast at each step, in training and in evaluation. Autocast would cast them
to exactly these values anyway, so storing them cast once gives identical outputs, half the weight memory
and no per-step cast. Trainable parameters (LoRA matrices, the classification head) stay fp32, as mixed
precision training needs; embeddings and LayerNorm, which autocast keeps in fp32, are left alone.
"""

from __future__ import annotations

import torch

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def hold_frozen_linears_in(model: torch.nn.Module, mixed_precision: str) -> int:
    """Cast every `Linear` whose parameters are all frozen to the autocast dtype; return how many were cast."""
    dtype = AUTOCAST_DTYPES.get(mixed_precision)
    if dtype is None:
        return 0
    cast = 0
    for module in model.modules():
        params = list(module.parameters(recurse=False))
        if isinstance(module, torch.nn.Linear) and params and not any(p.requires_grad for p in params):
            module.to(dtype)
            cast += 1
    return cast
