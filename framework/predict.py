"""Loading a finished run's model back and labelling new texts with it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import AutoTokenizer

from .peft_method import read_method_file, resolve_base
from .plugins import PluginSet
from .rundir import require_finished

CLASSIFIER_PREFIX = "classifier:"


@dataclass
class Prediction:
    text: str
    label: str
    probabilities: dict[str, float]


class RunPredictor:
    """The saved model of one run, ready to classify; the same path tests use to re-predict from disk.

    A PEFT method record loads through that method; a `classifier:<source>` record (a model the engine did not
    train) through the model source's `load_saved(directory)`."""

    def __init__(self, run_dir: Path, plugins: PluginSet, max_length: int = 512) -> None:
        run_dir = self.run_dir = require_finished(run_dir)
        model_dir = run_dir / "model"
        record = read_method_file(model_dir)
        self.labels: list[str] = record["labels"]
        self.classifier = None
        self.base: str | None = None
        if record["method"].startswith(CLASSIFIER_PREFIX):
            source = plugins.models.get(record["method"].removeprefix(CLASSIFIER_PREFIX))
            self.classifier = source.load_saved(model_dir)
            return
        base = self.base = resolve_base(run_dir, record["base"])
        method = plugins.peft_methods.get(record["method"])
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = method.load(model_dir, base, self.labels).eval()
        self.max_length = min(max_length, getattr(self.tokenizer, "model_max_length", max_length))

    def probabilities(self, texts: list[str], batch_size: int = 64) -> torch.Tensor:
        if self.classifier is not None:
            return torch.as_tensor(np.asarray(self.classifier.predict_proba(texts)), dtype=torch.float32)
        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), batch_size):
                batch = self.tokenizer(
                    texts[i : i + batch_size],
                    truncation=True,
                    max_length=self.max_length,
                    padding=True,
                    return_tensors="pt",
                )
                out.append(torch.softmax(self.model(**batch).logits.float(), dim=-1))
        return torch.cat(out) if out else torch.empty(0, len(self.labels))

    def predict(self, texts: list[str]) -> list[Prediction]:
        probs = self.probabilities(texts)
        return [
            Prediction(t, self.labels[int(p.argmax())], {lab: float(q) for lab, q in zip(self.labels, p, strict=True)})
            for t, p in zip(texts, probs, strict=True)
        ]
