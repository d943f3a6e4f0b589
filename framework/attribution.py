"""Word-piece attributions for many texts at once, with Captum, on the model's word-embedding layer.

Tools in the field explain one text per call; a data-set-level analysis needs thousands, so texts are sorted by
length and attributed in padded batches (at most `batch_size` texts per `attribute` call). Captum's
`internal_batch_size` (rows of one forward and backward pass, texts x integration steps) comes from a memory
budget and the batch's width, so peak memory stays bounded whatever the model size. Padding cannot leak into
the result: a [PAD] position holds [PAD] in the input and in the baseline, so its path integral is zero.

Texts are encoded as the run encoded them (framework/tokenization.py, the run's `--max-length`). Given the
accelerator a run predicts with (`RunPredictor.attributor`), the model computes in its mixed precision on its
device, and under `accelerate launch` each process attributes every N-th batch of the length-sorted texts and
the results are gathered: the batches are the same on any number of processes, so are the attributions.

Two methods:
- `ig`: `LayerIntegratedGradients` from a baseline that keeps [CLS]/[SEP]/[PAD] and puts [MASK] (or [PAD] when
  the tokenizer has no mask token) everywhere else. Completeness: the attributions of a text sum to
  logit_t(x) − logit_t(baseline); Captum's convergence delta is the gap, reported relative to that difference.
  With `fallback_steps`, only the texts whose relative delta is above MAX_RELATIVE_DELTA after `n_steps` are
  integrated again with `fallback_steps`: the precision is checked per text while most texts, whose path is
  smooth, take the cheaper rule (integration is nearly all of an analysis's time at base size).
- `gxi`: gradient × input (`LayerGradientXActivation`), one backward pass per text, no completeness guarantee.

The embedding layer is found with `get_input_embeddings()`, so a PEFT-wrapped model works unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import gather_object

from .japanese import normalised_with_offsets
from .tokenization import tokenize_truncated

METHODS = ("ig", "gxi")
#: relative convergence delta above which an integrated-gradients result is flagged as not converged
MAX_RELATIVE_DELTA = 0.05
#: activation memory one forward and backward pass of attribution may take (bytes)
DEFAULT_MEMORY_BUDGET = 1 << 30
#: activations a transformer layer keeps for the backward pass, per token, in units of its hidden size: an upper
#: estimate for BERT (layer inputs, q/k/v, attention output, both FFN activations, their autocast copies). With
#: the default budget the base-shape benchmark peaks at about 1.5 GB RSS, model included (docs/performance.md)
KEPT_PER_TOKEN = 24


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
    n_steps: int = 0  # integration steps taken (0 for gxi)

    @property
    def relative_delta(self) -> float:
        return abs(self.delta) / max(abs(self.logit_difference), 1e-6)


def baseline_ids(input_ids: torch.Tensor, tokenizer: Any) -> torch.Tensor:
    """[MASK] (or [PAD]) in place of every token that is not [CLS]/[SEP]/[PAD]/another special token."""
    filler = tokenizer.mask_token_id if tokenizer.mask_token_id is not None else tokenizer.pad_token_id
    special = torch.tensor(sorted(set(tokenizer.all_special_ids)), device=input_ids.device)
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


def rows_within_budget(model: torch.nn.Module, width: int, budget: int) -> int:
    """How many rows of `width` tokens one forward and backward pass can take within `budget` bytes of
    activations: layers x tokens x (KEPT_PER_TOKEN x hidden + attention scores) fp32 values. Pessimistic for a
    bf16 model (its activations are half the size), so the budget holds in either precision."""
    config = model.config
    layers = getattr(config, "num_hidden_layers", 12)
    hidden = getattr(config, "hidden_size", 768)
    heads = getattr(config, "num_attention_heads", 12)
    per_row = layers * width * (KEPT_PER_TOKEN * hidden + 2 * heads * width) * 4
    return max(1, budget // per_row)


@contextmanager
def attention_implementation(model: torch.nn.Module, implementation: str | None) -> Iterator[None]:
    """The model's attention switched to `implementation` (a transformers name) for the duration, where the
    model supports switching; None leaves it as it is."""
    current = getattr(getattr(model, "config", None), "_attn_implementation", None)
    switch = getattr(model, "set_attn_implementation", None)
    if implementation is None or current in (None, implementation) or switch is None:
        yield
        return
    switch(implementation)
    try:
        yield
    finally:
        switch(current)


class BatchAttributor:
    """Attributes a target class logit to the word pieces of many texts, batch by batch (and, given a
    multi-process accelerator, batches across processes). With `fallback_steps` (ig), a text whose relative
    convergence delta is above MAX_RELATIVE_DELTA after `n_steps` is integrated again with `fallback_steps`."""

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer,
        *,
        method: str = "ig",
        n_steps: int = 32,
        batch_size: int = 64,
        internal_batch_size: int | None = None,
        memory_budget: int | None = DEFAULT_MEMORY_BUDGET,
        max_length: int = 128,
        accelerator: Accelerator | None = None,
        attention: str | None = None,
        fallback_steps: int | None = None,
    ) -> None:
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, not {method!r}")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.method = method
        self.n_steps = n_steps
        self.fallback_steps = fallback_steps if method == "ig" else None
        self.batch_size = batch_size
        self.internal_batch_size = internal_batch_size
        self.memory_budget = memory_budget
        self.max_length = max_length
        self.accelerator = accelerator
        self.attention = attention
        self.device = next(model.parameters()).device
        # torch types an attribute it does not declare as Tensor | Module; transformers' and peft's models have it.
        layer = model.get_input_embeddings()  # type: ignore[operator]
        # Imported here: the analyzers that only predict (entity-bias, errors, calibration) never load Captum.
        from captum.attr import LayerGradientXActivation, LayerIntegratedGradients

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
        if not texts:
            return []
        encoded = tokenize_truncated(self.tokenizer, list(texts), self.max_length)[0]["input_ids"]
        found = self._attribute_all(texts, encoded, targets, range(len(texts)), self.n_steps)
        if self.fallback_steps:
            # in text order, not the gathered dict's: the second pass's batches must not depend on the processes
            again = [i for i in range(len(texts)) if found[i].relative_delta > MAX_RELATIVE_DELTA]
            found |= self._attribute_all(texts, encoded, targets, again, self.fallback_steps)
        return [found[i] for i in range(len(texts))]

    def _attribute_all(
        self,
        texts: Sequence[str],
        encoded: list[list[int]],
        targets: Sequence[int],
        indices: Sequence[int],
        n_steps: int,
    ) -> dict[int, TextAttribution]:
        """The texts `indices`, sorted by length, in batches within the memory budget; each process takes every
        N-th batch and the results are gathered, so every process returns all of them."""
        order = sorted(indices, key=lambda i: len(encoded[i]))
        chunks = []
        while order:
            rows = self._rows(len(encoded[order[min(self.batch_size, len(order)) - 1]]))
            size = self.batch_size if rows is None else max(1, min(self.batch_size, rows))
            chunks.append(order[:size])
            order = order[size:]
        acc = self.accelerator
        rank, processes = (acc.process_index, acc.num_processes) if acc is not None else (0, 1)
        mine: list[tuple[int, TextAttribution]] = []
        with frozen_parameters(self.model), attention_implementation(self.model, self.attention):
            for chunk in chunks[rank::processes]:
                mine.extend(zip(chunk, self._attribute_batch(texts, encoded, chunk, targets, n_steps), strict=True))
        return dict(gather_object(mine) if processes > 1 else mine)

    def _rows(self, width: int) -> int | None:
        """Rows of one forward and backward pass: as given, else from the memory budget (None: unbounded)."""
        if self.internal_batch_size is not None or self.memory_budget is None:
            return self.internal_batch_size
        return rows_within_budget(self.model, width, self.memory_budget)

    def _attribute_batch(
        self, texts: Sequence[str], encoded: list[list[int]], chunk: list[int], targets: Sequence[int], n_steps: int
    ) -> list[TextAttribution]:
        width = max(len(encoded[i]) for i in chunk)
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([encoded[i] + [pad] * (width - len(encoded[i])) for i in chunk], device=self.device)
        mask = torch.tensor(
            [[1] * len(encoded[i]) + [0] * (width - len(encoded[i])) for i in chunk], device=self.device
        )
        target = torch.tensor([int(targets[i]) for i in chunk], device=self.device)
        if self.method == "ig":
            attributions, delta = self._captum.attribute(
                inputs=ids,
                baselines=baseline_ids(ids, self.tokenizer),
                target=target,
                additional_forward_args=(mask,),
                n_steps=n_steps,
                internal_batch_size=self._rows(width),
                return_convergence_delta=True,
            )
            # Captum's delta is sum(attributions) - (logit_t(x) - logit_t(baseline)): the difference without two
            # more forward passes.
            deltas = delta.detach().float().cpu().numpy()
            differences = attributions.detach().float().sum(dim=(1, 2)).cpu().numpy() - deltas
        else:
            attributions = self._captum.attribute(inputs=ids, target=target, additional_forward_args=(mask,))
            deltas = differences = np.full(len(chunk), np.nan)
        scores = attributions.sum(-1).detach().float().cpu().numpy()
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
                    n_steps if self.method == "ig" else 0,
                )
            )
        return results
