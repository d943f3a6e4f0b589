"""Model source for hub ids and local directories, through the real `from_pretrained` (no remote code)."""

from __future__ import annotations

from pathlib import Path

from transformers import AutoModelForSequenceClassification, AutoTokenizer

from mikiwame.framework import hookimpl
from mikiwame.framework.config import RunConfig
from mikiwame.framework.errors import ModelError
from mikiwame.framework.models import LoadedModel, ModelUnavailable, hub_reachable
from mikiwame.framework.task import TaskData

OFFLINE_FALLBACK = "tiny"


class TransformersSource:
    name = "transformers"
    description = "any hub id or local model directory, loaded with AutoModelForSequenceClassification"
    loads_any_model = True

    def load(self, config: RunConfig, task: TaskData) -> LoadedModel:
        spec = config.model
        local = Path(spec).expanduser()
        if local.exists() and not local.is_dir():
            raise ModelError(
                f"{spec} is a file, not a model directory",
                where="--model",
                fix="give the directory that holds config.json, or a hub id",
            )
        if not local.exists() and spec.startswith((".", "/", "~")):
            raise ModelError(
                f"model directory {spec} does not exist",
                where="--model",
                fix="check the path, or give a hub id such as cl-tohoku/bert-base-japanese-v3",
            )
        offline = not local.is_dir() and not hub_reachable()
        try:
            tokenizer = AutoTokenizer.from_pretrained(spec, local_files_only=offline, trust_remote_code=False)
            model = AutoModelForSequenceClassification.from_pretrained(
                spec,
                num_labels=len(task.labels),
                id2label=dict(enumerate(task.labels)),
                label2id=task.label2id,
                local_files_only=offline,
                trust_remote_code=False,
                ignore_mismatched_sizes=True,
            )
        except OSError as err:
            if offline:
                raise ModelUnavailable(
                    "the model hub is unreachable and the model is not in the local cache", OFFLINE_FALLBACK
                ) from None
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ModelError(
                f"could not load model {spec!r}: {first}",
                where="--model",
                fix="check the hub id or directory (it needs config.json and tokenizer files)",
            ) from None
        hub_id = None if local.is_dir() else spec
        return LoadedModel(model, tokenizer, spec, self.name, pretrained=True, auto_peft="lora", hub_id=hub_id)


@hookimpl
def mikiwame_register_models(register):
    register(TransformersSource())
