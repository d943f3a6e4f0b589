"""HF `Trainer` + PEFT LoRA vs the mikiwame engine on the same work, side by side, each in its own process.

    python benchmarks/train_vs_trainer.py [--data ../shared/data] [--shape tiny base]
        [--threads 2] [--repeats 3] [--precision bf16]

Same livedoor headlines (a seeded subset), same tokenized ids, same BERT built from config (seed 0), same LoRA
(r 8, alpha 16, dropout 0.1, query+value), batch size, epochs, learning rate, warmup and clipping. The Trainer
runs at its best CPU settings: bf16, `train_sampling_strategy="group_by_length"`, dynamic padding, fused
AdamW (its default). Printed: training and evaluation samples/s, peak RSS, optimizer steps, non-padding and
padded training tokens, the model FLOP/s as a share of this machine's bf16 and fp32 matmul peak (measured
here on the model's own GEMM shapes), an fp32 check (dropout 0) that both give the same loss for the initial
model, the same training loss at each of 16 optimizer steps on the same batch and the same parameters after
them, and the ratios mikiwame / Trainer. Ratios within one run are what counts: these machines are noisy.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

SHAPES = {
    # name: (layers, hidden, heads, train examples, eval examples, epochs)
    "tiny": (2, 128, 4, 1000, 1000, 1),
    "base": (12, 768, 12, 256, 512, 1),
}
BATCH, EVAL_BATCH, LR, SEED, WARMUP, CLIP = 16, 64, 2e-3, 42, 0.1, 1.0
# The fp32 check trains CHECK_STEPS steps, every one on the same single batch: with 16 steps the warmup is one
# step (a ratio rounded up would make it two), and clipping at 0.1 acts (gradient norms here are 0.2-0.3).
CHECK_STEPS, CHECK_CLIP = 16, 0.1
# After the check's training the two sides' parameters agree to 4e-7 (tiny) and 9e-7 (base); the Trainer with
# weight decay 0.005 instead of 0.01 differs by 8e-6 and 6e-6.
PARAM_TOLERANCE = 2e-6


def build(shape: str, data_dir: str, check: bool):
    """Data, tokenizer and LoRA model: identical on both sides (same seeds, same order). The check trains on
    one batch for CHECK_STEPS epochs, without dropout: both samplers can only form that batch."""
    import random

    import torch
    from corpora import livedoor_titles, shared_data
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import BertConfig, BertForSequenceClassification

    from mikiwame.plugins.models.tiny import build_vocabulary, japanese_tokenizer

    layers, hidden, heads, n_train, n_eval, epochs = SHAPES[shape]
    texts, labels = livedoor_titles(shared_data(data_dir))
    order = list(range(len(texts)))
    random.Random(SEED).shuffle(order)
    names = sorted(set(labels))
    pick = lambda ids: ([texts[i] for i in ids], [names.index(labels[i]) for i in ids])  # noqa: E731
    train, evaluation = pick(order[:n_train]), pick(order[n_train : n_train + n_eval])
    tokenizer = japanese_tokenizer(build_vocabulary(train[0], 8000))
    tokenizer.model_max_length = 128
    if check:
        train, epochs = pick(order[:BATCH]), CHECK_STEPS
    dropout = 0.0 if check else 0.1
    config = BertConfig(
        vocab_size=len(tokenizer.vocab),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=4 * hidden,
        num_labels=len(names),
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )
    torch.manual_seed(0)
    model = BertForSequenceClassification(config)
    lora = LoraConfig(
        task_type=TaskType.SEQ_CLS, r=8, lora_alpha=16, lora_dropout=dropout, target_modules=["query", "value"]
    )
    return SimpleNamespace(
        train=train,
        eval=evaluation,
        tokenizer=tokenizer,
        model=get_peft_model(model, lora),
        config=config,
        epochs=epochs,
    )


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def warmup_steps(setup) -> int:
    """The engine's warmup (floor of ratio x steps), given to the Trainer as a count: from a ratio it rounds
    up (with 8 steps it would warm up for one step, at learning rate 0)."""
    return int(WARMUP * -(-len(setup.train[0]) // BATCH) * setup.epochs)


def run_trainer(setup, precision: str, check: bool) -> dict:
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    from mikiwame.framework.engine import trainable_state

    def rows(split):
        enc = setup.tokenizer(split[0], truncation=True, max_length=128)
        ids, mask = enc["input_ids"], enc["attention_mask"]
        return [{"input_ids": i, "attention_mask": m, "labels": y} for i, m, y in zip(ids, mask, split[1], strict=True)]

    train, evaluation = rows(setup.train), rows(setup.eval)
    pad = DataCollatorWithPadding(setup.tokenizer)
    padded = [0]

    def collate(features):
        batch = pad(features)
        padded[0] += batch["input_ids"].numel()
        return batch

    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out,
            per_device_train_batch_size=BATCH,
            per_device_eval_batch_size=EVAL_BATCH,
            num_train_epochs=setup.epochs,
            learning_rate=LR,
            weight_decay=0.01,
            warmup_steps=warmup_steps(setup),
            max_grad_norm=CHECK_CLIP if check else CLIP,
            bf16=precision == "bf16",
            use_cpu=True,
            train_sampling_strategy="group_by_length",
            eval_strategy="no",
            save_strategy="no",
            logging_strategy="steps" if check else "no",
            logging_steps=1,
            report_to="none",
            disable_tqdm=True,
            seed=SEED,
            include_num_input_tokens_seen="non_padding",
        )
        trainer = Trainer(
            model=setup.model,
            args=args,
            train_dataset=train,
            eval_dataset=evaluation,
            data_collator=collate,
        )
        if check:
            loss = trainer.evaluate()["eval_loss"]
            trainer.train()
            losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
            return {"loss": loss, "train_losses": losses, "params": trainable_state(setup.model)}
        start = time.perf_counter()
        trainer.train()
        train_s = time.perf_counter() - start
        padded_tokens = padded[0]
        start = time.perf_counter()
        trainer.evaluate()
        eval_s = time.perf_counter() - start
        return {
            "train_s": train_s,
            "eval_s": eval_s,
            "steps": trainer.state.global_step,
            "tokens": int(trainer.state.num_input_tokens_seen),
            "padded": padded_tokens,
        }


def run_mikiwame(setup, precision: str, check: bool) -> dict:
    from mikiwame.framework.batching import EncodedTexts
    from mikiwame.framework.config import RunConfig
    from mikiwame.framework.engine import Engine, make_accelerator, trainable_state
    from mikiwame.framework.tokenization import tokenize_texts

    def split(texts_labels):
        enc = tokenize_texts(setup.tokenizer, texts_labels[0], None)
        enc = {k: [s if len(s) <= 128 else s[:127] + s[-1:] for s in v] for k, v in enc.items()}
        return EncodedTexts(enc, texts_labels[1])

    config = RunConfig(
        batch_size=BATCH,
        eval_batch_size=EVAL_BATCH,
        epochs=setup.epochs,
        mixed_precision=precision,
        seed=SEED,
        warmup_ratio=WARMUP,
        weight_decay=0.01,
        max_grad_norm=CHECK_CLIP if check else CLIP,
    )
    accelerator = make_accelerator(config)
    train_losses: list[float] = []
    record = (lambda step, **_: train_losses.append(float(step.loss))) if check else (lambda **_: None)
    hooks = SimpleNamespace(
        mikiwame_on_step_end=record, **{f"mikiwame_{m}": lambda **_: None for m in ("on_evaluate", "after_train")}
    )
    splits = {"train": split(setup.train), "test": split(setup.eval)}
    # Timed from the engine's construction: the Trainer's train() also builds its optimizer, scheduler and
    # loaders and prepares the model.
    start = time.perf_counter()
    engine = Engine(config, accelerator, setup.model, setup.tokenizer, splits, lr=LR, hooks=hooks, run=None)
    if check:
        loss = float(engine.predict("test").losses.mean())
        engine.train(summarize=lambda p: {})
        return {"loss": loss, "train_losses": train_losses, "params": trainable_state(setup.model)}
    progress = engine.train(summarize=lambda p: {})
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    engine.predict("test")
    eval_s = time.perf_counter() - start
    tokens = padded = 0
    for epoch in range(setup.epochs):  # the sampler is seeded per epoch: these are the batches train() saw
        engine.train_loader.set_epoch(epoch)
        for batch in engine.train_loader:
            tokens += int(batch["attention_mask"].sum())
            padded += batch["input_ids"].numel()
    return {"train_s": train_s, "eval_s": eval_s, "steps": progress.global_step, "tokens": tokens, "padded": padded}


def side_main(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    setup = build(args.shape, args.data, args.check)
    result = (run_trainer if args.side == "trainer" else run_mikiwame)(setup, args.precision, args.check)
    if args.check:
        torch.save(result.pop("params"), args.params_out)
    lengths = [len(ids) for ids in setup.tokenizer(setup.train[0], truncation=True, max_length=128)["input_ids"]]
    result.update(
        n_train=len(setup.train[0]) * setup.epochs,
        n_eval=len(setup.eval[0]),
        peak_rss_mib=peak_rss_mib(),
        train_flop=train_flop(setup.config, lengths) * setup.epochs,
    )
    print(json.dumps(result))


def train_flop(config, lengths: list[int]) -> float:
    """Model FLOP of one epoch on the non-padding tokens: the encoder's GEMMs (q, k, v, o, two FFN) and
    attention scores, forward plus the input gradient (the frozen base needs no weight gradient)."""
    h, i, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    per_token = layers * 2 * (4 * h * h + 2 * h * i)
    forward = sum(n * per_token + layers * 4 * n * n * h for n in lengths)
    return 2 * forward


def matmul_peak(hidden: int, tokens: int, threads: int) -> dict:
    """GFLOP/s of torch.mm on the model's GEMM shapes (tokens x hidden x hidden and x 4 hidden), bf16 and fp32."""
    import torch

    torch.set_num_threads(threads)
    rates: dict[str, float] = {}
    for dtype in (torch.bfloat16, torch.float32):
        best = 0.0
        for n in (hidden, 4 * hidden):
            a, b = torch.randn(tokens, hidden, dtype=dtype), torch.randn(hidden, n, dtype=dtype)
            for _ in range(3):
                torch.mm(a, b)
            reps, start = 0, time.perf_counter()
            while time.perf_counter() - start < 1.0:
                torch.mm(a, b)
                reps += 1
            best = max(best, 2 * tokens * hidden * n * reps / (time.perf_counter() - start) / 1e9)
        rates[str(dtype).removeprefix("torch.")] = best
    return rates


def spawn(args, side: str, shape: str, check: bool) -> dict:
    """One side in its own process; the check also returns the trained parameters."""
    import torch

    command = [sys.executable, __file__, "--side", side, "--shape", shape, "--threads", str(args.threads)]
    command += ["--precision", "no" if check else args.precision]
    if args.data:
        command += ["--data", args.data]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "TOKENIZERS_PARALLELISM": "false"}
    with tempfile.TemporaryDirectory() as scratch:
        params = Path(scratch) / "params.pt"
        if check:
            command += ["--check", "--params-out", str(params)]
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        if done.returncode:
            sys.exit(f"{side} ({shape}) failed:\n{done.stderr[-3000:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        if check:
            result["params"] = torch.load(params, weights_only=True)  # its own child's file, in a fresh temp folder
    return result


def report(shape: str, runs: list[dict], check: dict, peak: dict, tokens: int) -> None:
    layers, hidden, heads, *_ = SHAPES[shape]
    print(f"\n== {shape}: {layers} layers, hidden {hidden}, {heads} heads; {len(runs)} round(s), medians ==")
    print(
        f"matmul peak ({tokens} x {hidden} x {{{hidden}, {4 * hidden}}}): "
        f"bf16 {peak['bfloat16']:.0f} GFLOP/s, fp32 {peak['float32']:.0f} GFLOP/s"
    )
    print(
        f"fp32 check, loss of the initial model on the same {runs[0]['trainer']['n_eval']} examples: "
        f"Trainer {check['trainer']['loss']:.6f}  mikiwame {check['mikiwame']['loss']:.6f}"
    )
    losses = {side: check[side]["train_losses"] for side in ("trainer", "mikiwame")}
    step_gap = (
        max((abs(a - b) for a, b in zip(losses["trainer"], losses["mikiwame"], strict=True)), default=math.inf)
        if len(losses["trainer"]) == len(losses["mikiwame"]) == CHECK_STEPS
        else math.inf
    )
    print(f"fp32 check, training loss at each of {CHECK_STEPS} steps on the same batch:")
    for side, values in losses.items():
        print(f"  {side:<9}" + " ".join(f"{v:.4f}" for v in values))
    print(f"  largest difference {step_gap:.2e}")
    params = {side: check[side]["params"] for side in ("trainer", "mikiwame")}
    param_gap = (
        max((params["trainer"][n] - params["mikiwame"][n]).abs().max().item() for n in params["trainer"])
        if params["trainer"].keys() == params["mikiwame"].keys()
        else math.inf
    )
    print(f"  trained parameters ({len(params['trainer'])} tensors): largest difference {param_gap:.2e}")
    rows = []
    for side in ("trainer", "mikiwame"):
        r = [run[side] for run in runs]
        flops = statistics.median(x["train_flop"] / x["train_s"] for x in r) / 1e9
        rows.append(
            {
                "side": side,
                "train/s": statistics.median(x["n_train"] / x["train_s"] for x in r),
                "eval/s": statistics.median(x["n_eval"] / x["eval_s"] for x in r),
                "rss": statistics.median(x["peak_rss_mib"] for x in r),
                "steps": r[0]["steps"],
                "tokens": r[0]["tokens"],
                "padded": r[0]["padded"],
                "gflops": flops,
            }
        )
    print(
        f"{'':<10}{'train/s':>9}{'eval/s':>9}{'RSS MiB':>9}{'steps':>7}{'tokens':>9}{'padded':>9}{'GFLOP/s':>9}"
        f"{'% bf16':>8}{'% fp32':>8}"
    )
    for row in rows:
        print(
            f"{row['side']:<10}{row['train/s']:>9.1f}{row['eval/s']:>9.1f}{row['rss']:>9.0f}{row['steps']:>7}"
            f"{row['tokens']:>9}{row['padded']:>9}{row['gflops']:>9.0f}{100 * row['gflops'] / peak['bfloat16']:>7.1f}%"
            f"{100 * row['gflops'] / peak['float32']:>7.1f}%"
        )
    ratio = lambda key: statistics.median(  # noqa: E731
        run["mikiwame"]["n_" + key]
        / run["mikiwame"][key + "_s"]
        / (run["trainer"]["n_" + key] / run["trainer"][key + "_s"])
        for run in runs
    )
    print(
        f"mikiwame / Trainer: training {ratio('train'):.2f}x, evaluation {ratio('eval'):.2f}x, "
        f"peak RSS {rows[1]['rss'] / rows[0]['rss']:.2f}x"
    )
    same = (
        rows[0]["steps"] == rows[1]["steps"]
        and rows[0]["tokens"] == rows[1]["tokens"]
        and abs(check["trainer"]["loss"] - check["mikiwame"]["loss"]) < 1e-4
        and step_gap < 1e-4
        and param_gap < PARAM_TOLERANCE
    )
    print("same work (steps, non-padding tokens, fp32 losses and parameters):", "yes" if same else "NO")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="shared corpora folder (default ../shared/data or MIKIWAME_SHARED_DATA)")
    parser.add_argument("--shape", nargs="+", default=["tiny", "base"], choices=sorted(SHAPES))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1, help="rounds; the report gives medians")
    parser.add_argument("--precision", default="bf16", choices=["bf16", "no"])
    parser.add_argument("--side", choices=["trainer", "mikiwame"], help=argparse.SUPPRESS)
    parser.add_argument("--check", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--params-out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        side_main(SimpleNamespace(**{**vars(args), "shape": args.shape[0]}))
        return
    for shape in args.shape:
        check = {side: spawn(args, side, shape, check=True) for side in ("trainer", "mikiwame")}
        runs = []
        for i in range(args.repeats):
            sides = ("trainer", "mikiwame") if i % 2 == 0 else ("mikiwame", "trainer")
            runs.append({side: spawn(args, side, shape, check=False) for side in sides})
        tokens = BATCH * round(runs[0]["mikiwame"]["tokens"] / runs[0]["mikiwame"]["n_train"])
        report(shape, runs, check, matmul_peak(SHAPES[shape][1], tokens, args.threads), tokens)


if __name__ == "__main__":
    from mikiwame.framework.runner import user_errors_exit  # here: the measured imports stay lazy

    with user_errors_exit():
        main()
