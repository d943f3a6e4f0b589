"""The built-in tiny model: a small BERT from config with a real Japanese tokenizer (MeCab via fugashi and
unidic-lite, then WordPiece) whose vocabulary is built from the training texts. Random weights: it is what an
offline run can have, and it says so."""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from transformers import BertConfig, BertForSequenceClassification, BertJapaneseTokenizer

from mikiwame.framework import hookimpl
from mikiwame.framework.config import RunConfig
from mikiwame.framework.errors import ConfigError
from mikiwame.framework.models import FALLBACK_SOURCE, LoadedModel
from mikiwame.framework.task import TaskData

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
MECAB_KWARGS = {"mecab_dic": "unidic_lite"}


def japanese_tokenizer(vocab: list[str]) -> BertJapaneseTokenizer:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vocab.txt"
        path.write_text("\n".join(vocab) + "\n", encoding="utf-8")
        return BertJapaneseTokenizer(
            str(path),
            word_tokenizer_type="mecab",
            subword_tokenizer_type="wordpiece",
            mecab_kwargs=MECAB_KWARGS,
            do_lower_case=False,
        )


def mecab_words() -> Any:
    """The word tokenizer of the tiny model (MeCab with unidic-lite, NFKC-normalised), for other models that
    want the same words."""
    return japanese_tokenizer(SPECIAL_TOKENS).word_tokenizer


def build_vocabulary(texts: Iterable[str], max_words: int) -> list[str]:
    """Special tokens, every character seen (alone and as a ##continuation, so no seen text is [UNK]), then
    the most frequent MeCab words. Ties are broken alphabetically so the vocabulary is deterministic."""
    words = mecab_words()
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(words.tokenize(text))
    chars = sorted({c for word in counts for c in word})
    vocab = SPECIAL_TOKENS + chars + [f"##{c}" for c in chars]
    seen = set(vocab)
    budget = max(max_words - len(vocab), 0)
    for word, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        if budget == 0:
            break
        if word not in seen:
            vocab.append(word)
            seen.add(word)
            budget -= 1
    return vocab


def _divisor_near(n: int, wanted: int) -> int:
    return min((d for d in range(1, n + 1) if n % d == 0), key=lambda d: abs(d - wanted))


class TinySource:
    name = FALLBACK_SOURCE
    description = "small random-weight BERT with a MeCab+WordPiece vocabulary built from the training texts"

    def load(self, config: RunConfig, task: TaskData) -> LoadedModel:
        import torch

        if config.tiny_hidden % config.tiny_heads:
            raise ConfigError(
                f"--tiny-hidden {config.tiny_hidden} is not divisible by --tiny-heads {config.tiny_heads}: "
                "each attention head takes an equal share of the hidden size",
                fix=f"use --tiny-heads {_divisor_near(config.tiny_hidden, config.tiny_heads)} or a hidden size "
                f"that is a multiple of {config.tiny_heads}",
            )
        tokenizer = japanese_tokenizer(build_vocabulary((e.text for e in task.split("train")), config.tiny_vocab_size))
        tokenizer.model_max_length = config.max_length
        bert = BertConfig(
            vocab_size=len(tokenizer.vocab),
            hidden_size=config.tiny_hidden,
            num_hidden_layers=config.tiny_layers,
            num_attention_heads=config.tiny_heads,
            intermediate_size=4 * config.tiny_hidden,
            max_position_embeddings=max(512, config.max_length),
            num_labels=len(task.labels),
            id2label=dict(enumerate(task.labels)),
            label2id=task.label2id,
        )
        torch.manual_seed(config.seed)
        model = BertForSequenceClassification(bert)
        name = f"tiny-bert ({config.tiny_layers} layers, hidden {config.tiny_hidden})"
        return LoadedModel(model, tokenizer, name=name, source=self.name, pretrained=False)


@hookimpl
def mikiwame_register_models(register):
    register(TinySource())
