"""Loading a finished run's model back and labelling texts with it, on the engine's own evaluation path.

A re-prediction encodes as the run did (its `--max-length`, its tokenizer, the tokenization cache), batches as
the engine's evaluation does (length-sorted, padded to the batch's longest, `--eval-batch-size` per process,
under `inference_mode`), in the run's mixed precision (the frozen linears held in bf16 where the run used
bf16), on the accelerator's device, and splits the batches across processes under `accelerate launch`. So
re-predicting a split gives the very numbers in predictions.jsonl, and analyzers measure the model the run
evaluated.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from accelerate import Accelerator
from transformers import AutoTokenizer

from .attribution import BatchAttributor
from .batching import EncodedTexts
from .config import RunConfig
from .engine import length_grouped_loader, make_accelerator, predict_batches
from .errors import ConfigError, RunDirectoryError
from .models import quiet_transformers
from .peft_method import read_method_file, resolve_base
from .precision import hold_frozen_linears_in
from .rundir import require_finished
from .runfiles import read_json, refuse_remote_model_config
from .tokenization import MECAB_DICTIONARIES, tokenize_truncated

if TYPE_CHECKING:  # plugins.py imports the contracts, which import this module
    from .plugins import PluginSet

CLASSIFIER_PREFIX = "classifier:"


def refuse_unsafe_model_dir(model_dir: Path) -> None:
    """A received model folder's tokenizer settings and model config, both through their allow-lists, before
    transformers reads either: every loader of a folder a run holds calls this one check."""
    refuse_unsafe_tokenizer_settings(model_dir)
    refuse_remote_model_config(model_dir)


def refuse_unsafe_tokenizer_settings(model_dir: Path) -> None:
    """A received run's tokenizer settings through an allow-list: MeCab gets only a known dictionary name, no
    option string (`-r FILE` makes MeCab open and print any file, `-d DIR` load a dictionary from anywhere),
    and no `auto_map` (remote code)."""
    path = model_dir / "tokenizer_config.json"
    settings = read_json(path, Any) if path.exists() or path.is_symlink() else {}  # a FIFO refused, not read
    mecab = settings.get("mecab_kwargs") if isinstance(settings, dict) else None
    unsafe = not isinstance(settings, dict) or "auto_map" in settings
    if mecab is not None:
        unsafe = unsafe or not isinstance(mecab, dict) or bool(set(mecab) - {"mecab_dic"})
        unsafe = unsafe or mecab.get("mecab_dic", "unidic_lite") not in MECAB_DICTIONARIES
    if unsafe:
        raise RunDirectoryError(
            "the tokenizer settings hold MeCab options, an unknown dictionary or remote code, which a run never saves",
            where=str(path),
            fix=f"use a run you made; a run's mecab_kwargs hold only mecab_dic: {', '.join(MECAB_DICTIONARIES)}",
        )


@dataclass
class Prediction:
    text: str
    label: str
    probabilities: dict[str, float]


def inference_accelerator(config: RunConfig, device: str = "auto", mixed_precision: str | None = None) -> Accelerator:
    """An accelerator for re-predicting a run outside its training process: the run's mixed precision on the
    accelerator's device (a GPU when one is visible), unless `--device` / `--mixed-precision` say otherwise."""
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda, but no CUDA GPU is visible to torch", fix="use --device cpu (or auto)")
    settings = dataclasses.replace(config, mixed_precision=mixed_precision or config.mixed_precision, report_to=[])
    settings.validate()
    return make_accelerator(settings, cpu=device == "cpu")


class RunPredictor:
    """The saved model of one run, ready to classify; the same path tests use to re-predict from disk.

    A PEFT method record loads through that method; a `classifier:<source>` record (a model the engine did not
    train) through the model source's `load_saved(directory)`: such a model gives probabilities but no
    gradients (`model` and `tokenizer` are None)."""

    def __init__(
        self,
        run_dir: Path,
        plugins: PluginSet,
        accelerator: Accelerator | None = None,
        *,
        device: str = "auto",
        mixed_precision: str | None = None,
        config: RunConfig | None = None,
    ) -> None:
        """`config`: the run's, when the caller has read it from a finished `run_dir` (`mikiwame analyze`)."""
        run_dir = self.run_dir = run_dir if config is not None else require_finished(run_dir)
        model_dir = run_dir / "model"
        record = read_method_file(model_dir)
        self.method: str = record["method"]
        self.labels: list[str] = record["labels"]
        self.config = config or RunConfig.load(run_dir / "config.json", plugins.option_types())
        self.max_length = self.config.max_length
        self.classifier = self.model = self.tokenizer = None
        self.base: str | None = None
        self.accelerator = accelerator
        if self.method.startswith(CLASSIFIER_PREFIX):
            source = plugins.models.get(self.method.removeprefix(CLASSIFIER_PREFIX))
            if source.load_saved is None:
                raise RunDirectoryError(
                    f"{model_dir / 'peft.json'} names model source {source.name!r}, which cannot load a saved model",
                    fix="re-predict with the plugin version that saved the run",
                )
            self.classifier = source.load_saved(model_dir)
            return
        self.accelerator = accelerator or inference_accelerator(self.config, device, mixed_precision)
        base = self.base = resolve_base(run_dir, record["base"])
        method = plugins.peft_methods.get(self.method)
        refuse_unsafe_model_dir(model_dir)
        with quiet_transformers():
            self.tokenizer = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=False)
            model = method.load(model_dir, base, self.labels).eval().requires_grad_(False)
        # Under autocast every Linear computes in the autocast dtype; stored in it, none is re-cast per call.
        hold_frozen_linears_in(model, self.accelerator.mixed_precision)
        self.model = self.accelerator.prepare_model(model, evaluation_mode=True)

    @property
    def has_gradients(self) -> bool:
        """False for a fitted classifier (TF-IDF, cloze, in-context, pipeline): nothing to attribute through."""
        return self.model is not None

    def probabilities(self, texts: list[str]) -> torch.Tensor:
        """Class probabilities, one row per text in the order given (float32)."""
        if self.classifier is not None:
            return torch.as_tensor(np.asarray(self.classifier.predict_proba(texts)), dtype=torch.float32)
        if not texts:
            return torch.empty(0, len(self.labels))
        acc = self.accelerator
        assert acc is not None  # set whenever there is a model (a classifier returned above)
        columns, _ = tokenize_truncated(self.tokenizer, list(texts), self.max_length)
        loader = length_grouped_loader(
            EncodedTexts(columns, [0] * len(texts)),
            self.tokenizer,
            self.config.eval_batch_size,
            acc.num_processes,
            shuffle=False,
            seed=self.config.seed,
        )
        predicted = predict_batches(acc, self.model, acc.prepare_data_loader(loader), len(texts), "texts")
        return torch.from_numpy(predicted.probabilities)

    def predict(self, texts: list[str]) -> list[Prediction]:
        probs = self.probabilities(texts)
        return [
            Prediction(t, self.labels[int(p.argmax())], {lab: float(q) for lab, q in zip(self.labels, p, strict=True)})
            for t, p in zip(texts, probs, strict=True)
        ]

    def attributor(
        self, *, method: str = "ig", n_steps: int = 32, fallback_steps: int | None = None
    ) -> BatchAttributor:
        """Attributions through the model as it predicts here: same encoding, precision, device and processes.
        In bf16/fp16 on a CPU the attention is transformers' eager one (matmuls in the autocast dtype, softmax in
        fp32): the CPU's fused SDPA kernel computes its backward pass in bf16 about 9x slower than in fp32 (60
        vs 8 ms a call on the base shape), a third of all attribution time."""
        if self.model is None:
            raise ConfigError(f"this run's model ({self.method}) has no gradients to attribute through")
        acc = self.accelerator
        assert acc is not None  # set whenever there is a model
        low_precision_cpu = acc.device.type == "cpu" and acc.mixed_precision in ("bf16", "fp16")
        return BatchAttributor(
            self.model,
            self.tokenizer,
            method=method,
            n_steps=n_steps,
            fallback_steps=fallback_steps,
            max_length=self.max_length,
            accelerator=acc,
            attention="eager" if low_precision_cpu else None,
        )
