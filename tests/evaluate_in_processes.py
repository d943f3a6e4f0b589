"""Run by tests/test_multiprocess.py under `accelerate launch`: evaluate one seeded tiny model on an odd number
of texts and save what the main process gathered, so 1- and 2-process results can be compared."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

from mikiwame.framework.config import RunConfig
from mikiwame.framework.engine import Engine, make_accelerator
from mikiwame.framework.plugins import build_plugin_set
from mikiwame.framework.runner import encode
from mikiwame.framework.task import TaskData


def main(out: Path) -> None:
    config = RunConfig.of(model="tiny", tiny_hidden=32, tiny_heads=2, eval_batch_size=8, seed=7)
    plugins = build_plugin_set()
    data = plugins.tasks.get("headlines").load(config)
    test = data.split("test")[:95]  # odd, and not a multiple of 2 processes x 8
    data = TaskData(data.name, data.split("train") + test, data.source, data.labels)
    accelerator = make_accelerator(config)
    loaded = plugins.models.get("tiny").load(config, data)
    encoded, _ = encode(loaded.tokenizer, data, "test", config.max_length)
    engine = Engine(
        config, accelerator, loaded.model, loaded.tokenizer, {"test": encoded}, lr=1e-3, hooks=plugins.hook, run=None
    )
    predictions = engine.predict("test")
    if accelerator.is_main_process:
        np.save(out / "probabilities.npy", predictions.probabilities)
        (out / "world.json").write_text(
            json.dumps({"world_size": accelerator.num_processes, "gold": predictions.gold.tolist()})
        )
    accelerator.wait_for_everyone()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
    # Tearing down a gloo group that a DDP-wrapped model used can hang in its destructor after the results are
    # written (seen on this machine); leave at once instead, the files above are complete and flushed.
    os._exit(0)
