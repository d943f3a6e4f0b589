"""Dropout with a cheaper random mask on CPU.

`nn.Dropout` draws one Bernoulli sample per element from the CPU generator: in a LoRA step of a base-sized
BERT on 2 cores that is about a quarter of the time (docs/performance.md has the profile). The same mask, each
element kept with probability 1 − p and scaled by 1 / (1 − p), can be read off 16 random bits per element,
four per 64-bit draw of the same generator, about 3x faster. p is rounded to a multiple of 1/65536 and the
scale uses the rounded value, so the expected output is exactly the input. The bits come from torch's global
generator, so runs are seeded and a resumed run draws what a straight one would.

Only the `nn.Dropout` modules are replaced (hidden-state, embedding, classifier and LoRA dropout); attention
dropout inside `scaled_dot_product_attention` is left as it is.
"""

from __future__ import annotations

import math
from typing import Any

import torch

LEVELS = 1 << 16  # a 16-bit random value decides each element


def keep_mask(shape: torch.Size, drop_levels: int, device: torch.device) -> torch.Tensor:
    """True where an element is kept: P(keep) = 1 − drop_levels / 65536, independently per element."""
    n = math.prod(shape)
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=device).random_(-(2**63), 2**63 - 1)
    bits = words.view(torch.int16)[:n]
    return (bits >= drop_levels - LEVELS // 2).view(shape)


class _MaskedScale(torch.autograd.Function):
    """x * keep * scale with the same in backward: one multiply by the bool mask and one in-place scale each
    way, where `torch.where(keep, x * scale, 0)` and its autograd take twice the passes (1.7x the time)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, keep: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.save_for_backward(keep)
        ctx.scale = scale
        return torch.mul(x, keep).mul_(scale)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (keep,) = ctx.saved_tensors
        return torch.mul(grad, keep).mul_(ctx.scale), None, None


class FastDropout(torch.nn.Module):
    """`nn.Dropout(p)` with the mask from `keep_mask`; identity in eval mode."""

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0 < p < 1:
            raise ValueError(f"dropout probability must be in (0, 1), not {p}")
        self.p = p
        self.drop_levels = round(p * LEVELS)
        self.scale = LEVELS / (LEVELS - self.drop_levels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        return _MaskedScale.apply(x, keep_mask(x.shape, self.drop_levels, x.device), self.scale)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def use_fast_dropout(model: torch.nn.Module) -> int:
    """Replace every `nn.Dropout` with 0 < p < 1 by a `FastDropout` of the same p; return how many."""
    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is torch.nn.Dropout and 0 < child.p < 1:
                setattr(parent, name, FastDropout(child.p).train(child.training))
                replaced += 1
    return replaced
