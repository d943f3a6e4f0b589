"""Choosing the model a run uses: a registered model source by name, else the source that loads any model name
(hub id or local directory), with a fast offline check and a loud fall-back to the model that source names
when the hub cannot be reached."""

from __future__ import annotations

import os
import socket
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlparse

import torch
from transformers import PreTrainedModel
from transformers.utils import logging as transformers_logging

from .classifier import TextClassifier
from .config import RunConfig
from .errors import ModelError
from .task import TaskData

if TYPE_CHECKING:  # plugins.py types its registries with the ModelSource below
    from .plugins import PluginSet

# Pre-training data of hub models we describe correctly (from their model cards).
_V3 = "CC-100 (Japanese) + Japanese Wikipedia (2023-01-02); MeCab/UniDic-lite"
KNOWN_MODELS = {
    "cl-tohoku/bert-base-japanese-v3": f"{_V3} + WordPiece, 32,768 vocab",
    "cl-tohoku/bert-base-japanese-char-v3": f"{_V3} + characters, 7,027 vocab",
    "cl-tohoku/bert-large-japanese-v3": f"{_V3} + WordPiece, 32,768 vocab",
    "cl-tohoku/bert-base-japanese-v2": "Japanese Wikipedia (2021-08-31); MeCab/UniDic-lite + WordPiece, 32,768 vocab",
    "cl-tohoku/bert-base-japanese": "Japanese Wikipedia (2019-09-01); MeCab/IPAdic + WordPiece, 32,000 vocab",
}


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """No loading bars, load reports or library deprecation notices while a model is loaded or wrapped: a head
    re-initialised on purpose is mikiwame's to explain, in the model table (`new_weights`) at training and not
    at all at prediction (the saved weights replace it), and the libraries' notices to each other are not the
    user's to act on."""
    verbosity, bars = transformers_logging.get_verbosity(), transformers_logging.is_progress_bar_enabled()
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        transformers_logging.set_verbosity(verbosity)
        if bars:
            transformers_logging.enable_progress_bar()


class ModelUnavailable(Exception):
    """Raised by a model source when the model cannot be had here (offline and not cached); `fallback` names
    the registered source that stands in (unless --no-fallback)."""

    def __init__(self, reason: str, fallback: str):
        super().__init__(reason)
        self.fallback = fallback


@dataclass
class LoadedModel:
    model: PreTrainedModel
    tokenizer: Any
    name: str
    source: str
    pretrained: bool
    requested: str = ""
    fallback: bool = False
    fallback_reason: str = ""
    notes: list[str] = field(default_factory=list)
    # What the model starts from when it is neither random nor a known hub model (e.g. pre-trained word vectors):
    # a description, and details (licence, attribution) for the model information.
    pretraining_data: str | None = None
    initialisation: dict[str, Any] = field(default_factory=dict)
    # Learning-rate multipliers by parameter-name fragment (see Engine), e.g. slower pre-initialised embeddings.
    lr_scales: dict[str, float] = field(default_factory=dict)
    # What `--peft auto` means for this model, and the sentence that says why when it is not the obvious choice.
    auto_peft: str | None = None
    auto_peft_reason: str = ""
    # The hub id a saved run names as its base instead of copying the base's weights (None: a local model).
    hub_id: str | None = None
    # Weights the checkpoint did not supply (a new classification head, usually), said in the model table.
    new_weights: str | None = None


class ModelSource(Protocol):
    """Where `--model NAME` comes from: `load` returns a transformer to fine-tune (`LoadedModel`) or a classifier
    the engine fits (`TextClassifier`). Subclass it to inherit the defaults of the optional members."""

    name: str
    description: str
    loads_any_model: bool = False
    """True for the one source that loads every `--model` no source is named after (a hub id, a directory)."""
    load_saved: Callable[[Path], TextClassifier] | None = None
    """For a source whose `load` returns a `TextClassifier`: `load_saved(model_dir)` reads back what the
    classifier's `save` wrote (predict.py, analyzers); None for a source of transformers."""

    def load(self, config: RunConfig, task: TaskData) -> LoadedModel | TextClassifier: ...


@cache
def hub_reachable() -> bool:
    """HF_HUB_OFFLINE, or one short connection attempt: the library's own retries cost ~46 s per process."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        socket.create_connection((url.hostname or "huggingface.co", url.port or 443), timeout=2).close()
    except OSError:
        return False
    return True


def model_source(plugins: PluginSet, model: str) -> ModelSource:
    """The source named `model`, else the one that loads any model name."""
    if model in plugins.models:
        return plugins.models.get(model, option="--model")
    for entry in plugins.models:
        if entry.item.loads_any_model:
            return entry.item
    raise ModelError(f"no model source is named {model!r}, and none loads hub ids or directories", where="--model")


def load_model(plugins: PluginSet, config: RunConfig, task: TaskData) -> LoadedModel | TextClassifier:
    source = model_source(plugins, config.model)
    try:
        loaded = source.load(config, task)
    except ModelUnavailable as err:
        if config.no_fallback:
            raise ModelError(
                f"model {config.model!r} is not available: {err}",
                where="--model",
                fix="give a local model directory, run where the hub is reachable, or drop --no-fallback",
            ) from None
        loaded = plugins.models.get(err.fallback).load(config, task)
        if isinstance(loaded, LoadedModel):
            loaded.fallback, loaded.fallback_reason = True, str(err)
    if not isinstance(loaded, LoadedModel):
        return loaded
    loaded.requested = config.model
    if config.dropout is not None:
        for module in loaded.model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = config.dropout
    return loaded


def describe_model(loaded: LoadedModel, model: torch.nn.Module, peft: str) -> dict[str, Any]:
    """The model-information table, as data."""
    cfg = loaded.model.config
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {
        "name": loaded.name,
        "requested": loaded.requested,
        "source": loaded.source,
        "fallback": loaded.fallback,
        "fallback_reason": loaded.fallback_reason,
        "pretrained": loaded.pretrained,
        "peft": peft,
        "architecture": type(loaded.model).__name__,
        "parameters_total": total,
        "parameters_trainable": trainable,
        "layers": getattr(cfg, "num_hidden_layers", None),
        "hidden": getattr(cfg, "hidden_size", None),
        "heads": getattr(cfg, "num_attention_heads", None),
        "vocabulary": getattr(cfg, "vocab_size", None),
        "max_positions": getattr(cfg, "max_position_embeddings", None),
        "tokenizer": type(loaded.tokenizer).__name__,
        "word_tokenizer": type(getattr(loaded.tokenizer, "word_tokenizer", None)).__name__
        if getattr(loaded.tokenizer, "word_tokenizer", None) is not None
        else None,
        "pretraining_data": loaded.pretraining_data
        or KNOWN_MODELS.get(
            loaded.name,
            "random initialisation (no pre-training)" if not loaded.pretrained else "unknown (see the model card)",
        ),
        **({"initialisation": loaded.initialisation} if loaded.initialisation else {}),
        **({"new_weights": loaded.new_weights} if loaded.new_weights else {}),
        "notes": loaded.notes,
    }
