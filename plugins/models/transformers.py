"""Model source for hub ids and local directories, through the real `from_pretrained` (no remote code)."""

from __future__ import annotations

from pathlib import Path

from transformers import AutoModelForSequenceClassification, AutoTokenizer

from mikiwame.framework import hookimpl
from mikiwame.framework.config import RunConfig
from mikiwame.framework.errors import ModelError
from mikiwame.framework.models import LoadedModel, ModelSource, ModelUnavailable, hub_reachable, quiet_transformers
from mikiwame.framework.task import TaskData

OFFLINE_FALLBACK = "tiny"


class TransformersSource(ModelSource):
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
            with quiet_transformers():  # the load report's news is in the model table (`new_weights`)
                tokenizer = AutoTokenizer.from_pretrained(spec, local_files_only=offline, trust_remote_code=False)
                model, loading = AutoModelForSequenceClassification.from_pretrained(
                    spec,
                    num_labels=len(task.labels),
                    id2label=dict(enumerate(task.labels)),
                    label2id=task.label2id,
                    local_files_only=offline,
                    trust_remote_code=False,
                    ignore_mismatched_sizes=True,
                    output_loading_info=True,
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
        loaded = LoadedModel(model, tokenizer, spec, self.name, pretrained=True, auto_peft="lora", hub_id=hub_id)
        loaded.new_weights = new_weights(loading)
        return loaded


def new_weights(loading: dict) -> str | None:
    """The weights the checkpoint did not supply, from `output_loading_info`, in place of transformers' load
    report: a pre-trained encoder has no head for this task's labels (missing), or one for other labels (another
    shape), and either way the head starts at random, which is what fine-tuning expects. A head for as many
    other labels loads as it is and is not listed; weights the checkpoint has and the model does not use (an MLM
    head) are not listed either."""
    missing = sorted(loading.get("missing_keys") or ())
    mismatched = sorted(loading.get("mismatched_keys") or ())  # (name, shape in the checkpoint, shape here)
    parts = []
    if missing:
        parts.append(f"{listed(missing)} (not in the checkpoint)")
    if mismatched:
        shapes = [f"{name} {list(there)} there, {list(here)} here" for name, there, here in mismatched]
        parts.append(f"{listed(shapes)} (another shape in the checkpoint)")
    return "; ".join(parts) + ": initialised at random" if parts else None


def listed(names: list[str], shown: int = 4) -> str:
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


@hookimpl
def mikiwame_register_models(register):
    register(TransformersSource())
