"""Batched integrated gradients against the per-example loop (one text per `attribute` call), as attribution
tools in the field run it: texts/s of each, their ratio, and the largest difference between the two.

    python benchmarks/attribution.py                    # 1,000 texts of ~40 tokens, 2 layers / hidden 64
    python benchmarks/attribution.py --texts 200 --loop-texts 50 --threads 2

The model is the tiny BERT built from the bundled headlines (random weights: speed and agreement do not depend
on training). Texts are three bundled headlines joined, to reach the ~40 tokens of a news headline with its lead.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np
import torch

from mikiwame.framework.attribution import BatchAttributor
from mikiwame.framework.config import RunConfig
from mikiwame.framework.task import Example, TaskData
from mikiwame.plugins.tiny_model import TinySource

HEADLINES = Path(__file__).resolve().parents[1] / "data" / "headlines" / "headlines.tsv"


def benchmark_texts(n: int) -> list[str]:
    with HEADLINES.open(encoding="utf-8", newline="") as fh:
        rows = [r["text"] for r in csv.DictReader(fh, delimiter="\t")]
    return ["。".join(rows[(j * i + 3 * j) % len(rows)] for j in (1, 7, 13)) for i in range(n)]


def tiny_model(texts: list[str], hidden: int, layers: int):
    data = TaskData("bench", [Example(str(i), t, "ab"[i % 2], "train") for i, t in enumerate(texts)], "bench")
    config = RunConfig(tiny_hidden=hidden, tiny_layers=layers, tiny_heads=2, tiny_vocab_size=4000, max_length=128)
    loaded = TinySource().load(config, data)
    return loaded.model.eval(), loaded.tokenizer


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=1000)
    parser.add_argument("--loop-texts", type=int, default=100, help="texts for the (slow) per-example loop")
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    texts = benchmark_texts(args.texts)
    model, tokenizer = tiny_model(texts, args.hidden, args.layers)
    with torch.no_grad():
        targets = [int(t) for t in torch.zeros(len(texts), dtype=torch.long)]
    tokens = np.mean([len(ids) for ids in tokenizer(texts)["input_ids"]])

    batched = BatchAttributor(model, tokenizer, n_steps=args.steps, batch_size=args.batch_size)
    start = time.perf_counter()
    fast = batched.attribute(texts, targets)
    batched_s = time.perf_counter() - start

    single = BatchAttributor(model, tokenizer, n_steps=args.steps, batch_size=1)
    subset = texts[: args.loop_texts]
    start = time.perf_counter()
    slow = [single.attribute([t], [y])[0] for t, y in zip(subset, targets, strict=False)]
    loop_s = time.perf_counter() - start

    difference = max(float(np.abs(a.scores - b.scores).max()) for a, b in zip(fast, slow, strict=False))
    deltas = np.asarray([a.relative_delta for a in fast])
    figures = {
        "texts": len(texts),
        "mean_tokens": float(tokens),
        "batched_seconds": batched_s,
        "batched_texts_per_s": len(texts) / batched_s,
        "loop_texts": len(subset),
        "loop_seconds": loop_s,
        "loop_texts_per_s": len(subset) / loop_s,
        "speedup": (len(texts) / batched_s) / (len(subset) / loop_s),
        "max_abs_difference": difference,
        "median_relative_delta": float(np.median(deltas)),
    }
    print(
        f"{figures['texts']} texts, {figures['mean_tokens']:.1f} tokens on average, {args.layers} layers / "
        f"hidden {args.hidden}, {args.steps} steps, {args.threads} threads\n"
        f"batched (batch {args.batch_size}):  {batched_s:6.1f} s  {figures['batched_texts_per_s']:7.1f} texts/s\n"
        f"per-example loop ({len(subset)} texts): {loop_s:6.1f} s  {figures['loop_texts_per_s']:7.1f} texts/s\n"
        f"ratio: {figures['speedup']:.1f}x; largest |batched - loop| attribution: {difference:.2e}; "
        f"median relative convergence delta {figures['median_relative_delta']:.3f}"
    )
    return figures


if __name__ == "__main__":
    main()
