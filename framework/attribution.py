"""Word-piece attributions for many texts at once, with Captum, on the model's word-embedding layer.

Tools in the field explain one text per call; a data-set-level analysis needs thousands, so texts are sorted by
length and attributed in padded batches (`batch_size` texts per `attribute` call; Captum's
`internal_batch_size` bounds the rows of one forward pass). Padding cannot leak into the result: a [PAD]
position holds [PAD] in the input and in the baseline, so its path integral is zero.

Two methods:
- `ig`: `LayerIntegratedGradients` from a baseline that keeps [CLS]/[SEP]/[PAD] and puts [MASK] (or [PAD] when
  the tokenizer has no mask token) everywhere else. Completeness: the attributions of a text sum to
  logit_t(x) − logit_t(baseline); Captum's convergence delta is the gap, reported relative to that difference.
- `gxi`: gradient × input (`LayerGradientXActivation`), one backward pass per text, no completeness guarantee.

The embedding layer is found with `get_input_embeddings()`, so a PEFT-wrapped model works unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from captum.attr import LayerGradientXActivation, LayerIntegratedGradients

from .japanese import normalised_with_offsets

METHODS = ("ig", "gxi")
#: relative convergence delta above which an integrated-gradients result is flagged as not converged
MAX_RELATIVE_DELTA = 0.05


@dataclass
class TextAttribution:
    """One text: its word pieces, each piece's attribution to the target logit, and the piece's character
    span in the original text (None for special tokens and pieces that could not be placed)."""

    tokens: list[str]
    scores: np.ndarray
    spans: list[tuple[int, int] | None]
    target: int
    delta: float  # Captum convergence delta (nan for gxi)
    logit_difference: float  # logit_t(x) − logit_t(baseline) (nan for gxi)

    @property
    def relative_delta(self) -> float:
        return abs(self.delta) / max(abs(self.logit_difference), 1e-6)


def baseline_ids(input_ids: torch.Tensor, tokenizer) -> torch.Tensor:
    """[MASK] (or [PAD]) in place of every token that is not [CLS]/[SEP]/[PAD]/another special token."""
    filler = tokenizer.mask_token_id if tokenizer.mask_token_id is not None else tokenizer.pad_token_id
    special = torch.tensor(sorted(set(tokenizer.all_special_ids)))
    keep = torch.isin(input_ids, special)
    return torch.where(keep, input_ids, torch.full_like(input_ids, filler))


def piece_spans(tokenizer, text: str, tokens: Sequence[str]) -> list[tuple[int, int] | None]:
    """Character spans of word pieces in `text`, found by walking the NFKC-normalised text (works for slow and
    fast tokenizers alike). An [UNK] takes the characters up to the next placed piece."""
    norm, origin = normalised_with_offsets(text)
    haystack = norm.casefold()
    special = set(tokenizer.all_special_tokens) - {tokenizer.unk_token}
    spans: list[tuple[int, int] | None] = []
    unknown: list[int] = []
    position = 0

    def place(start: int, end: int) -> tuple[int, int] | None:
        return (origin[start], origin[end - 1] + 1) if end > start else None

    for token in tokens:
        if token in special:
            spans.append(None)
            continue
        if token == tokenizer.unk_token:
            unknown.append(len(spans))
            spans.append(None)
            continue
        piece = token.removeprefix("##").lstrip("▁").casefold()
        at = haystack.find(piece, position) if piece else -1
        if at < 0:
            spans.append(None)
            continue
        if unknown:
            spans[unknown[0]] = place(position, at)
            unknown = []
        spans.append(place(at, at + len(piece)))
        position = at + len(piece)
    if unknown:
        spans[unknown[0]] = place(position, len(norm))
    return spans


@contextmanager
def frozen_parameters(model: torch.nn.Module) -> Iterator[None]:
    """Captum needs gradients with respect to the embedding layer's output only; weight gradients would make
    every backward pass about twice as expensive."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


class BatchAttributor:
    """Attributes a target class logit to the word pieces of many texts, batch by batch."""

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer,
        *,
        method: str = "ig",
        n_steps: int = 32,
        batch_size: int = 64,
        internal_batch_size: int | None = None,
        max_length: int = 128,
    ) -> None:
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, not {method!r}")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.method = method
        self.n_steps = n_steps
        self.batch_size = batch_size
        self.internal_batch_size = internal_batch_size
        self.max_length = max_length
        layer = model.get_input_embeddings()
        if method == "ig":
            self._captum = LayerIntegratedGradients(self._logits, layer)
        else:
            self._captum = LayerGradientXActivation(self._logits, layer)

    def _logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits.float()

    def attribute(self, texts: Sequence[str], targets: Sequence[int]) -> list[TextAttribution]:
        """One TextAttribution per text, in the order given; `targets` are class indices."""
        if len(texts) != len(targets):
            raise ValueError(f"{len(texts)} texts but {len(targets)} targets")
        encoded = self.tokenizer(list(texts), truncation=True, max_length=self.max_length)["input_ids"]
        order = sorted(range(len(texts)), key=lambda i: len(encoded[i]))
        out: list[TextAttribution | None] = [None] * len(texts)
        with frozen_parameters(self.model):
            for chunk_start in range(0, len(order), self.batch_size):
                chunk = order[chunk_start : chunk_start + self.batch_size]
                for i, result in zip(chunk, self._attribute_batch(texts, encoded, chunk, targets), strict=True):
                    out[i] = result
        return [r for r in out if r is not None]

    def _attribute_batch(
        self, texts: Sequence[str], encoded: list[list[int]], chunk: list[int], targets: Sequence[int]
    ) -> list[TextAttribution]:
        width = max(len(encoded[i]) for i in chunk)
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([encoded[i] + [pad] * (width - len(encoded[i])) for i in chunk])
        mask = torch.tensor([[1] * len(encoded[i]) + [0] * (width - len(encoded[i])) for i in chunk])
        target = torch.tensor([int(targets[i]) for i in chunk])
        if self.method == "ig":
            base = baseline_ids(ids, self.tokenizer)
            attributions, delta = self._captum.attribute(
                inputs=ids,
                baselines=base,
                target=target,
                additional_forward_args=(mask,),
                n_steps=self.n_steps,
                internal_batch_size=self.internal_batch_size,
                return_convergence_delta=True,
            )
            with torch.no_grad():
                rows = torch.arange(len(chunk))
                difference = (self._logits(ids, mask) - self._logits(base, mask))[rows, target]
            deltas, differences = delta.detach().numpy(), difference.numpy()
        else:
            attributions = self._captum.attribute(inputs=ids, target=target, additional_forward_args=(mask,))
            deltas = differences = np.full(len(chunk), np.nan)
        scores = attributions.sum(-1).detach().float().numpy()
        results = []
        for row, i in enumerate(chunk):
            n = len(encoded[i])
            tokens = self.tokenizer.convert_ids_to_tokens(encoded[i])
            results.append(
                TextAttribution(
                    tokens,
                    scores[row, :n],
                    piece_spans(self.tokenizer, texts[i], tokens),
                    int(targets[i]),
                    float(deltas[row]),
                    float(differences[row]),
                )
            )
        return results
