"""A damaged or tampered checkpoint given to `--resume`: each file's SHA-256 (recorded in state.json) is checked
before it is loaded, and state.json and each process's JSON go through the validation layer, so damage that
keeps a file's size, or a tampered value, is one message naming the file (and the key), never a silent resume
or a traceback. The undamaged checkpoint resuming bit-exactly is tests/test_engine.py's control."""

from __future__ import annotations

import json
import shutil

import pytest

from mikiwame.framework.config import RunConfig
from mikiwame.framework.runner import run, run_guarded

from ..conftest import tiny_config
from .conftest import set_key

STEP = "step-000002"


@pytest.fixture(scope="module")
def checkpointed(tmp_path_factory):
    """One epoch of 4 steps with a checkpoint every 2."""
    return run(tiny_config(tmp_path_factory.mktemp("ckpt"), epochs=1, train_size=32, save_every=2, keep_checkpoints=5))


def resume_refused(run_dir, tmp_path, capsys, damage) -> str:
    """Damage a copy of the checkpoint, resume from it, return the one message (exit 2, nothing left behind)."""
    copy = tmp_path / "received"
    shutil.copytree(run_dir / "checkpoints", copy / "checkpoints")
    shutil.copy(run_dir / "config.json", copy / "config.json")
    damage(copy / "checkpoints" / STEP)
    config = RunConfig.load(copy / "config.json")
    config.output_dir, config.resume = str(tmp_path / "out"), str(copy / "checkpoints" / STEP)
    with pytest.raises(SystemExit) as exit_:
        run_guarded(config)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.startswith("mikiwame: error:") and "Traceback" not in err, err
    assert not any((tmp_path / "out").glob("*")), "a refused resume leaves no run behind"
    return err


def flip_a_byte(path) -> None:
    """Same size, other bytes: what a disk that lied, or a tampered copy, leaves."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name", ["tensors.safetensors", "process-0.safetensors", "process-0.json"])
def test_a_checkpoint_file_damaged_in_place_is_named_by_its_checksum(checkpointed, tmp_path, capsys, name):
    if name.endswith(".json"):  # a JSON file whose bytes change but which stays valid JSON of the same size

        def damage(step):
            path = step / name
            text = path.read_text()
            step_at = text.index('"accelerate_step": ') + len('"accelerate_step": ')
            digit = str((int(text[step_at]) + 1) % 10)
            path.write_text(text[:step_at] + digit + text[step_at + 1 :])

    else:

        def damage(step):
            flip_a_byte(step / name)

    err = resume_refused(checkpointed, tmp_path, capsys, damage)
    assert name in err and "SHA-256" in err


STATE = [
    (("progress", "epoch"), "x"),
    (("progress", "global_step"), -1),
    (("progress", "history"), 5),
    (("progress", "best_loss"), "inf"),
    (("identity", "labels"), 5),
    (("optimizer",), "x"),
    (("scheduler",), []),
    (("sha256",), {}),
]


@pytest.mark.parametrize(("keys", "value"), STATE, ids=[f"{'.'.join(k)}={v!r}" for k, v in STATE])
def test_a_tampered_state_json_is_one_message_naming_the_key(checkpointed, tmp_path, capsys, keys, value):
    err = resume_refused(checkpointed, tmp_path, capsys, lambda step: set_key(step / "state.json", keys, value))
    assert "state.json" in err
    assert keys[-1] in err or (keys == ("sha256",) and "records no SHA-256" in err), err


def test_the_checksums_are_recorded_for_every_file(checkpointed):
    state = json.loads((checkpointed / "checkpoints" / STEP / "state.json").read_text())
    assert set(state["sha256"]) == set(state["files"]) and all(len(h) == 64 for h in state["sha256"].values())
