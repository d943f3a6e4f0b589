"""The command line and flow of recipes/pretrain_mlm.py: read the unlabeled texts (`--text-from`), build or load
the language model, pre-train it within the budget (studies/pretraining.py) and save it with a record of how."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from accelerate import Accelerator

from mikiwame.framework.errors import ConfigError, MikiwameError
from mikiwame.framework.plugins import build_plugin_set
from mikiwame.framework.runner import user_errors_exit
from mikiwame.plugins.models.prompting import load_language_model
from mikiwame.plugins.models.tiny import build_vocabulary, japanese_tokenizer, words_with_vectors
from mikiwame.plugins.models.word_vectors import VECTOR_STD_FACTOR, initialise_embeddings
from mikiwame.studies.livedoor_bodies import training_bodies
from mikiwame.studies.pretraining import (
    PretrainingBudget,
    WholeWordMasker,
    build_language_model,
    causal_batch,
    corpus_blocks,
    pretrain,
    save_language_model,
)


def read_texts(path: Path, split_seeds: list[int]) -> tuple[list[str], dict]:
    if not path.exists():
        raise MikiwameError(f"{path} does not exist", where="--text-from", fix="give a .txt file, folder or archive")
    if path.is_dir():
        files = sorted(path.rglob("*.txt"))
        return [f.read_text(encoding="utf-8") for f in files], {"path": str(path), "documents": len(files)}
    if path.name.endswith((".tar.gz", ".tgz", ".tar")):
        bodies, counts = training_bodies(path, split_seeds, build_plugin_set())
        return bodies, {"path": str(path), "livedoor_training_split_only": True, "split_seeds": split_seeds, **counts}
    try:
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except UnicodeDecodeError:
        raise MikiwameError(f"{path} is not UTF-8 text", where="--text-from", fix="convert it to UTF-8") from None
    return lines, {"path": str(path), "documents": len(lines)}


def parse_args(description: str, argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--text-from", type=Path, action="append", required=True, help="repeat for several sources")
    p.add_argument("--output-dir", type=Path, required=True)
    p.add_argument("--causal", action="store_true", help="a GPT-2-style causal LM instead of a masked LM")
    p.add_argument("--base", help="continue this model (hub id or directory) instead of starting from scratch")
    p.add_argument("--vocab-size", type=int, default=8000)
    p.add_argument(
        "--init-vectors",
        help="from scratch: start the word embeddings from pre-trained vectors (ja-ginza, needs "
        "pip install 'mikiwame[vectors]'; or a word2vec text file), as --model tiny --init-vectors does",
    )
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--heads", type=int, default=4)
    # defaults for a few CPU-minutes of a tiny model: 64 x 64 tokens a step at 1e-3 took the loss of livedoor
    # bodies from 8.9 to 6.6 in 6 minutes on one loaded core, where 32 x 128 at 5e-4 barely moved it
    p.add_argument("--block-size", type=int, default=64, help="tokens per training sequence")
    p.add_argument("--mask-probability", type=float, default=0.15)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--max-steps", type=int, default=2000)
    p.add_argument("--max-minutes", type=float, default=10.0, help="stop after this much training time")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument(
        "--split-seed",
        type=int,
        nargs="+",
        default=[42],
        help="the livedoor task's split seed (its --seed); several: only bodies in the training split of each",
    )
    return p.parse_args(argv)


def main(description: str, argv: Sequence[str] | None = None) -> Path:
    """Pre-train and save; a user error ends as every recipe's does (`user_errors_exit`)."""
    args = parse_args(description, argv)
    accelerator = Accelerator()
    vectors = None
    with user_errors_exit():
        texts, sources = [], []
        for path in args.text_from:
            found, record = read_texts(path, args.split_seed)
            texts += found
            sources.append(record)
        if args.base and args.init_vectors:
            raise ConfigError("--init-vectors starts a model from scratch", fix="drop --base or --init-vectors")
        if args.base:
            model, tokenizer = load_language_model(args.base, "causal" if args.causal else "masked", "--base")
        else:
            extra = words_with_vectors(args.init_vectors) if args.init_vectors else []
            tokenizer = japanese_tokenizer(build_vocabulary(texts, args.vocab_size, extra))
            model = build_language_model(
                tokenizer, args.causal, args.hidden, args.layers, args.heads, args.block_size, args.seed
            )
            if args.init_vectors:
                std = model.config.initializer_range * VECTOR_STD_FACTOR
                vectors = initialise_embeddings(model.get_input_embeddings(), tokenizer.vocab, args.init_vectors, std)
    tokenizer.model_max_length = args.block_size
    blocks = corpus_blocks(texts, tokenizer, args.block_size)
    pad = tokenizer.pad_token_id or 0
    collate = (
        (lambda b: causal_batch(b, pad))
        if args.causal
        else WholeWordMasker(tokenizer, args.mask_probability, args.seed)
    )
    budget = PretrainingBudget(args.max_steps, args.max_minutes * 60, args.batch_size, args.lr, seed=args.seed)
    report = pretrain(model.train(), blocks, collate, budget, accelerator)
    if accelerator.is_main_process:
        record = {
            "objective": "causal LM" if args.causal else f"masked LM, whole-word masking p={args.mask_probability}",
            "base": args.base or "from scratch",
            "word_vectors": vectors,
            "sources": sources,
            "arguments": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "text_from"},
        }
        save_language_model(accelerator.unwrap_model(model), tokenizer, args.output_dir, record, report)
        print(
            f"pre-trained {report.steps} steps in {report.seconds} s on {report.blocks} blocks "
            f"({report.tokens} tokens); loss {report.first_loss:.3f} -> {report.last_loss:.3f}; "
            f"saved to {args.output_dir}"
        )
    return args.output_dir
