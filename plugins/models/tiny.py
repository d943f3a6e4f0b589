"""The built-in tiny model: a small BERT from config with a real Japanese tokenizer (MeCab via fugashi and
unidic-lite, then WordPiece) whose vocabulary is built from the training texts. Random weights: it is what an
offline run can have, and it says so. With `--word-vectors` its word embeddings start from pre-trained vectors;
`--tiny-pooling mean` puts the classification head on the mean of the encoder's outputs instead of [CLS]."""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    BertConfig,
    BertForSequenceClassification,
    BertJapaneseTokenizer,
)
from transformers.modeling_outputs import SequenceClassifierOutput

from mikiwame.framework import hookimpl
from mikiwame.framework.config import RunConfig
from mikiwame.framework.errors import ConfigError
from mikiwame.framework.models import LoadedModel, ModelSource
from mikiwame.framework.options import option, read_options
from mikiwame.framework.task import TaskData

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
MECAB_KWARGS = {"mecab_dic": "unidic_lite"}
POOLINGS = ("cls", "mean")


class MeanPooledBertConfig(BertConfig):
    """BERT's configuration for a head that reads the mean of the encoder's outputs: saved with the model
    (its own model_type), so a run directory reloads into the same head through AutoModel."""

    model_type = "mikiwame-mean-pooled-bert"


class MeanPooledBertForSequenceClassification(BertForSequenceClassification):
    """BERT whose classification head reads the mean of the last hidden states over the text's tokens (the
    attention mask's positions) instead of the [CLS] pooler. A randomly initialised encoder keeps each input
    row in its residual stream, so with pre-trained word embeddings this head starts near the mean word
    vector, a good linear feature on its own, where the [CLS] head must first learn to gather the words."""

    config_class = MeanPooledBertConfig

    def __init__(self, config: MeanPooledBertConfig) -> None:
        super().__init__(config)
        self.bert.pooler = None

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> SequenceClassifierOutput:
        outputs = self.bert(
            input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            return_dict=True,
            **kwargs,
        )
        hidden = outputs.last_hidden_state
        mask = torch.ones(hidden.shape[:2], device=hidden.device) if attention_mask is None else attention_mask
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1)
        logits = self.classifier(self.dropout(pooled))
        loss = None if labels is None else torch.nn.functional.cross_entropy(logits, labels)
        return SequenceClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )


AutoConfig.register(MeanPooledBertConfig.model_type, MeanPooledBertConfig)
AutoModelForSequenceClassification.register(MeanPooledBertConfig, MeanPooledBertForSequenceClassification)


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


def build_vocabulary(texts: Iterable[str], max_words: int, extra_words: Iterable[str] = ()) -> list[str]:
    """Special tokens, every character seen (alone and as a ##continuation, so no seen text is [UNK]), then
    the most frequent MeCab words while the budget lasts, then every one of `extra_words` not yet in (words
    pre-trained vectors know, so texts after training keep them whole). Ties are broken alphabetically so the
    vocabulary is deterministic."""
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
    vocab += [word for word in dict.fromkeys(extra_words) if word not in seen]
    return vocab


def _divisor_near(n: int, wanted: int) -> int:
    return min((d for d in range(1, n + 1) if n % d == 0), key=lambda d: abs(d - wanted))


@dataclass
class TinyOptions:
    tiny_layers: int = option(2, "transformer layers of the tiny model")
    tiny_hidden: int = option(128, "hidden size of the tiny model")
    tiny_heads: int = option(4, "attention heads of the tiny model (a divisor of --tiny-hidden)")
    tiny_vocab_size: int = option(8000, "word pieces the tiny model's vocabulary keeps from the training texts")
    tiny_pooling: str = option(
        "cls",
        "what the tiny model's classification head reads: the [CLS] pooler, or the mean of the encoder's outputs "
        "over the text (a better start with --word-vectors and few examples)",
        choices=POOLINGS,
    )

    def validate(self) -> None:
        for name in ("tiny_layers", "tiny_hidden", "tiny_heads", "tiny_vocab_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.tiny_hidden % self.tiny_heads:
            raise ConfigError(
                f"--tiny-hidden {self.tiny_hidden} is not divisible by --tiny-heads {self.tiny_heads}: "
                "each attention head takes an equal share of the hidden size",
                fix=f"use --tiny-heads {_divisor_near(self.tiny_hidden, self.tiny_heads)} or a hidden size "
                f"that is a multiple of {self.tiny_heads}",
            )


AUTO_PEFT_REASON = (
    "the base model has random weights, so this run uses full fine-tuning "
    "(LoRA on a frozen random base learns little); --peft lora forces LoRA"
)


class TinySource(ModelSource):
    name = "tiny"
    description = "small random-weight BERT with a MeCab+WordPiece vocabulary built from the training texts"

    def load(self, config: RunConfig, task: TaskData) -> LoadedModel:
        sizes = read_options(TinyOptions, config.options)
        vectors = config.options.get("init_vectors")
        extra = words_with_vectors(vectors) if vectors else []
        texts = (e.text for e in task.split("train"))
        tokenizer = japanese_tokenizer(build_vocabulary(texts, sizes.tiny_vocab_size, extra))
        tokenizer.model_max_length = config.max_length
        config_class, model_class = (
            (MeanPooledBertConfig, MeanPooledBertForSequenceClassification)
            if sizes.tiny_pooling == "mean"
            else (BertConfig, BertForSequenceClassification)
        )
        bert = config_class(
            vocab_size=len(tokenizer.vocab),
            hidden_size=sizes.tiny_hidden,
            num_hidden_layers=sizes.tiny_layers,
            num_attention_heads=sizes.tiny_heads,
            intermediate_size=4 * sizes.tiny_hidden,
            max_position_embeddings=max(512, config.max_length),
            num_labels=len(task.labels),
            id2label=dict(enumerate(task.labels)),
            label2id=task.label2id,
        )
        torch.manual_seed(config.seed)
        model = model_class(bert)
        mean = ", mean pooling" if sizes.tiny_pooling == "mean" else ""
        name = f"tiny-bert ({sizes.tiny_layers} layers, hidden {sizes.tiny_hidden}{mean})"
        loaded = LoadedModel(
            model, tokenizer, name, self.name, pretrained=False, auto_peft="full", auto_peft_reason=AUTO_PEFT_REASON
        )
        if vectors:
            _start_from_vectors(loaded, vectors, config)
        return loaded


def words_with_vectors(vectors: str) -> list[str]:
    """The table's frequent words that MeCab keeps whole (one MeCab word, as the vocabulary's entries are)."""
    from mikiwame.plugins.models.word_vectors import VOCABULARY_WORDS, frequent_words

    words = mecab_words()
    return [w for w in frequent_words(vectors, VOCABULARY_WORDS) if words.tokenize(w) == [w]]


def _start_from_vectors(loaded: LoadedModel, vectors: str, config: RunConfig) -> None:
    """Word embeddings from pre-trained vectors (plugins/models/word_vectors.py); the encoder stays random, so the run
    still trains every weight, with the embeddings at their own (slower) learning rate."""
    from mikiwame.plugins.models.word_vectors import EMBEDDING_LR_SCALE, VECTOR_STD_FACTOR, initialise_embeddings

    embeddings = loaded.model.bert.embeddings.word_embeddings
    std = loaded.model.config.initializer_range * VECTOR_STD_FACTOR
    info = initialise_embeddings(embeddings, loaded.tokenizer.vocab, vectors, std)
    scale = float(config.options.get("embedding_lr_scale", EMBEDDING_LR_SCALE))
    loaded.lr_scales = {"word_embeddings": scale}
    loaded.initialisation = {"word_vectors": info}
    loaded.pretraining_data = (
        f"word embeddings from {info['name']} {info['version']} ({info['licence']}); encoder random"
    )
    loaded.notes.append(
        f"word embeddings: {info['initialised']} of {info['whole_words']} whole-word vocabulary entries "
        f"({info['initialised_share']:.0%}) start from {info['name']} vectors ({info['projection']}); "
        f"## pieces and misses keep random rows; embedding learning rate x{scale:g}"
    )


@hookimpl
def mikiwame_register_models(register):
    register(TinySource())


@hookimpl
def mikiwame_options():
    return TinyOptions
