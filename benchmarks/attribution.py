"""Integrated gradients at scale: batched against the per-example loop (tiny shape), and the run's own path
against the fp32 path at base size (base shape).

    python benchmarks/attribution.py                    # tiny: 1,000 texts of ~40 tokens, 2 layers / hidden 64
    python benchmarks/attribution.py --texts 200 --loop-texts 50 --threads 2
    python benchmarks/attribution.py --shape base --fp32-texts 24 --threads 2

Tiny: the model is the tiny BERT built from the bundled headlines (random weights: speed and agreement do not
depend on training). Texts are three bundled headlines joined, to reach the ~40 tokens of a news headline with
its lead.

Base: a BERT of cl-tohoku/bert-base-japanese-v3's shape (12 layers, hidden 768, 12 heads, 32,768 word pieces)
built from config with random weights and a MeCab + WordPiece tokenizer, saved with `save_pretrained`,
fine-tuned with LoRA in bf16 for one epoch on the bundled headlines (the recipe, as a user runs it). Then, each
in its own process (peak RSS is that process's `ru_maxrss`), the predicted class of the held-out headlines is
attributed on
- the shortcuts analyzer's setting (16 steps, texts whose relative delta stays above 5% integrated again with
  32), on the run's path, on all held-out headlines;
- the run's path with 32 steps for every text (`RunPredictor.attributor`: the run's bf16, frozen linears held
  in bf16, length-sorted batches, `internal_batch_size` from the memory budget), on all held-out headlines;
- the fp32 path analyzers took before (fp32 model, batches of 64 texts, every integration step of a batch in
  one forward pass), on the first `--fp32-texts` of them only: it takes seconds per headline at this size;
- the run's path again on those same texts, for a like-for-like ratio.
Agreement is measured on the common texts: each word's share of its text's total |attribution| (what the
shortcuts analyzer ranks units by), the largest share difference, the rank correlation of the shares and
whether each text's top word is the same. On a machine shared with other jobs, use `--threads 1`: two
OpenMP threads per process that wait on each other at every op were 14x slower than one thread here under a
load average of 10.
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from scipy import stats

from mikiwame.framework.attribution import BatchAttributor
from mikiwame.framework.config import RunConfig
from mikiwame.framework.runner import user_errors_exit
from mikiwame.framework.task import Example, TaskData
from mikiwame.plugins.analyzers.shortcuts import DEFAULT_STEPS
from mikiwame.plugins.models.tiny import TinySource

REPO = Path(__file__).resolve().parents[1]
HEADLINES = REPO / "data" / "headlines" / "headlines.tsv"
BASE_VOCABULARY = 32768  # cl-tohoku/bert-base-japanese-v3


def benchmark_texts(n: int) -> list[str]:
    with HEADLINES.open(encoding="utf-8", newline="") as fh:
        rows = [r["text"] for r in csv.DictReader(fh, delimiter="\t")]
    return ["。".join(rows[(j * i + 3 * j) % len(rows)] for j in (1, 7, 13)) for i in range(n)]


def tiny_model(texts: list[str], hidden: int, layers: int):
    data = TaskData("bench", [Example(str(i), t, "ab"[i % 2], "train") for i, t in enumerate(texts)], "bench")
    config = RunConfig.of(tiny_hidden=hidden, tiny_layers=layers, tiny_heads=2, tiny_vocab_size=4000, max_length=128)
    loaded = TinySource().load(config, data)
    return loaded.model.eval(), loaded.tokenizer


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def tiny(args: argparse.Namespace) -> dict[str, float]:
    texts = benchmark_texts(args.texts)
    model, tokenizer = tiny_model(texts, args.hidden, args.layers)
    targets = [0] * len(texts)
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


# ---------------------------------------------------------------- base shape
def base_model_dir(directory: Path, train_texts: list[str]) -> Path:
    """A random-weight BERT of bert-base-japanese-v3's shape with a MeCab + WordPiece tokenizer, saved as a
    local model directory (`--model DIR`). The vocabulary is the tiny model's (built from the training texts),
    filled up to 32,768 entries so the embedding matrix has the real size."""
    from transformers import BertConfig, BertForSequenceClassification

    from mikiwame.plugins.models.tiny import build_vocabulary, japanese_tokenizer

    vocab = build_vocabulary(train_texts, BASE_VOCABULARY)
    vocab += [f"[unused{i}]" for i in range(BASE_VOCABULARY - len(vocab))]
    tokenizer = japanese_tokenizer(vocab)
    config = BertConfig(vocab_size=len(vocab), hidden_size=768, num_hidden_layers=12, num_attention_heads=12)
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def base_run(work: Path) -> Path:
    """The base-shaped model fine-tuned with LoRA in bf16 for one epoch by the recipe, as a user runs it."""
    from mikiwame.plugins.tasks.headlines import Headlines

    data = Headlines().load(RunConfig())
    model_dir = base_model_dir(work / "model", [e.text for e in data.split("train")])
    recipe = REPO / "recipes" / "lora_headlines.py"
    command = [sys.executable, str(recipe), "--model", str(model_dir), "--peft", "lora", "--mixed-precision", "bf16"]
    command += ["--epochs", "1", "--output-dir", str(work / "runs")]
    subprocess.run(command, check=True, capture_output=True, text=True)
    (run,) = (work / "runs").iterdir()
    return run


def measure(run: Path, path: str, limit: int | None, out: Path) -> None:
    """One measurement in this process: attribute the predicted class of the run's held-out texts."""
    from mikiwame.framework.analysis import AnalysisContext
    from mikiwame.framework.plugins import build_plugin_set
    from mikiwame.framework.predict import RunPredictor
    from mikiwame.framework.results import RunResults

    plugins = build_plugin_set()
    texts = [e.text for e in AnalysisContext(RunResults.load(run), plugins).held_out_examples(10_000)][:limit]
    start = time.perf_counter()
    if path == "analyzer":
        predictor = RunPredictor(run, plugins)
        attributor = predictor.attributor(n_steps=DEFAULT_STEPS, fallback_steps=2 * DEFAULT_STEPS)
    elif path == "run":
        predictor = RunPredictor(run, plugins)
        attributor = predictor.attributor()
    else:  # the fp32 path analyzers took before: fp32, 64 texts x every step in one forward pass
        predictor = RunPredictor(run, plugins, mixed_precision="no", device="cpu")
        attributor = BatchAttributor(
            predictor.model, predictor.tokenizer, batch_size=64, memory_budget=None, max_length=predictor.max_length
        )
    loaded = time.perf_counter()
    predicted = predictor.probabilities(texts).argmax(-1).tolist()
    attributions = attributor.attribute(texts, predicted)
    seconds = time.perf_counter() - loaded
    result = {
        "path": path,
        "texts": len(texts),
        "seconds": seconds,
        "load_seconds": loaded - start,
        "texts_per_s": len(texts) / seconds,
        "peak_rss_mib": peak_rss_mib(),
        "median_relative_delta": float(np.median([a.relative_delta for a in attributions])),
        "integrated_again": float(np.mean([a.n_steps != attributor.n_steps for a in attributions])),
        "text": texts,
        "target": predicted,
        "scores": [a.scores.tolist() for a in attributions],
    }
    out.write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")


def shares(text: str, scores: list[float], tokenizer_spans: list) -> list[float]:
    from mikiwame.framework.attribution import TextAttribution
    from mikiwame.plugins.analyzers.shortcuts import word_shares

    attribution = TextAttribution([], np.asarray(scores), tokenizer_spans, 0, float("nan"), float("nan"))
    return [share for _, _, share in word_shares(text, attribution)]


def agreement(run: Path, fast: dict, reference: dict) -> dict[str, float]:
    """Word shares of the common texts on both paths: largest difference, rank correlation, same top word."""
    from transformers import AutoTokenizer

    from mikiwame.framework.attribution import piece_spans
    from mikiwame.framework.tokenization import tokenize_truncated

    tokenizer = AutoTokenizer.from_pretrained(run / "model")
    n = reference["texts"]
    texts = reference["text"]
    ids = tokenize_truncated(tokenizer, texts, RunConfig.load(run / "config.json").max_length)[0]["input_ids"]
    differences, a_all, b_all, same_top = [], [], [], 0
    for i in range(n):
        spans = piece_spans(tokenizer, texts[i], tokenizer.convert_ids_to_tokens(ids[i]))
        a = np.asarray(shares(texts[i], fast["scores"][i], spans))
        b = np.asarray(shares(texts[i], reference["scores"][i], spans))
        differences.append(float(np.abs(a - b).max()))
        a_all.extend(a)
        b_all.extend(b)
        same_top += int(a.argmax() == b.argmax())
    assert fast["target"][:n] == reference["target"], "both paths must attribute the same predicted classes"
    return {
        "texts": n,
        "max_share_difference": max(differences),
        "median_share_difference": float(np.median(differences)),
        "share_spearman": float(stats.spearmanr(a_all, b_all).statistic),
        "same_top_word": same_top / n,
    }


def base(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        run = Path(args.run) if args.run else base_run(work)

        def child(path: str, limit: int | None) -> dict:
            out = work / f"{path}-{limit}.json"
            command = [sys.executable, __file__, "--measure", path, "--run", str(run), "--threads", str(args.threads)]
            subprocess.run([*command, "--limit", str(limit or 0), "--out", str(out)], check=True)
            return json.loads(out.read_text(encoding="utf-8"))

        analyzer = child("analyzer", None)
        fast = child("run", None)
        same = child("run", args.fp32_texts)
        reference = child("fp32", args.fp32_texts)
        agreed = {name: agreement(run, r, reference) for name, r in (("analyzer", analyzer), ("run", fast))}
    rows = [
        ("analyzer's 16 (32) steps, all", analyzer),
        ("run's path 32 steps, all", fast),
        ("run's path 32 steps, subset", same),
        ("fp32 path 32 steps, subset", reference),
    ]
    print(f"base shape (12 layers, hidden 768, LoRA, bf16 run), {args.threads} threads; run {run}")
    for name, r in rows:
        print(
            f"{name:30s} {r['texts']:4d} texts {r['seconds']:8.1f} s {r['texts_per_s']:7.2f} texts/s  "
            f"peak RSS {r['peak_rss_mib']:7.0f} MiB  median relative delta {r['median_relative_delta']:.4f}  "
            f"integrated again {r['integrated_again']:.0%}"
        )
    ratio = fast["texts_per_s"] / reference["texts_per_s"]
    print(
        f"texts/s ratio to the fp32 path (subset): analyzer's setting (all) "
        f"{analyzer['texts_per_s'] / reference['texts_per_s']:.1f}x, run's path (all) {ratio:.1f}x, run's path on "
        f"the same subset {same['texts_per_s'] / reference['texts_per_s']:.1f}x"
    )
    for name, a in agreed.items():
        print(
            f"agreement of the {name} path with the fp32 path on {a['texts']} texts (word shares of |attribution|): "
            f"largest difference {a['max_share_difference']:.3f}, median per text {a['median_share_difference']:.3f}, "
            f"Spearman {a['share_spearman']:.3f}, same top word in {a['same_top_word']:.0%} of texts"
        )
    return {"analyzer": analyzer, "run": fast, "same_subset": same, "fp32": reference, "agreement": agreed}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=("tiny", "base"), default="tiny")
    parser.add_argument("--texts", type=int, default=1000, help="tiny: texts for the batched path")
    parser.add_argument("--loop-texts", type=int, default=100, help="tiny: texts for the (slow) per-example loop")
    parser.add_argument("--steps", type=int, default=32, help="tiny: integration steps")
    parser.add_argument("--batch-size", type=int, default=64, help="tiny: texts per attribute call")
    parser.add_argument("--hidden", type=int, default=64, help="tiny: hidden size")
    parser.add_argument("--layers", type=int, default=2, help="tiny: layers")
    parser.add_argument("--fp32-texts", type=int, default=24, help="base: texts for the (slow) fp32 path")
    parser.add_argument("--run", help="base: a finished base-shape run to reuse instead of training one")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--measure", choices=("analyzer", "run", "fp32"), help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.measure:
        measure(Path(args.run), args.measure, args.limit or None, Path(args.out))
        return {}
    return base(args) if args.shape == "base" else tiny(args)


if __name__ == "__main__":
    with user_errors_exit():
        main()
