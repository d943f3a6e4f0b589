"""Two CPU processes (gloo) behave as one: evaluation gathers every example exactly once, and training with
2 processes x batch b equals 1 process x batch 2b. `--cpu --num_processes 2` silently runs one process, so
these launch with ACCELERATE_USE_CPU=1 and --multi_gpu, and assert the world size."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from safetensors.torch import load_file

from .conftest import RECIPE, REPO

pytestmark = pytest.mark.slow
ENV = {**os.environ, "ACCELERATE_USE_CPU": "1", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def launch(processes: int, *args: str) -> None:
    command = [sys.executable, "-m", "accelerate.commands.launch"]
    if processes > 1:
        command += ["--multi_gpu", "--num_processes", str(processes), "--main_process_port", "29517"]
    else:
        command += ["--num_processes", "1"]
    done = subprocess.run([*command, *args], capture_output=True, text=True, env=ENV, cwd=REPO, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def test_two_processes_evaluate_exactly_what_one_does(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    script = str(REPO / "tests" / "evaluate_in_processes.py")
    launch(1, script, str(one))
    launch(2, script, str(two))
    w1, w2 = (json.loads((d / "world.json").read_text()) for d in (one, two))
    assert (w1["world_size"], w2["world_size"]) == (1, 2)
    assert w1["gold"] == w2["gold"] and len(w2["gold"]) == 95
    p1, p2 = np.load(one / "probabilities.npy"), np.load(two / "probabilities.npy")
    assert p1.shape == p2.shape == (95, 6)
    np.testing.assert_array_equal(p1.argmax(-1), p2.argmax(-1))
    np.testing.assert_allclose(p1, p2, atol=1e-6, rtol=0)


def test_two_processes_of_batch_b_train_like_one_of_batch_2b(tmp_path):
    common = [
        "--model",
        "tiny",
        "--dropout",
        "0",
        "--train-size",
        "96",
        "--epochs",
        "1",
        "--tiny-hidden",
        "32",
        "--tiny-heads",
        "2",
    ]
    launch(2, str(RECIPE), *common, "--batch-size", "4", "--output-dir", str(tmp_path / "two"))
    launch(1, str(RECIPE), *common, "--batch-size", "8", "--output-dir", str(tmp_path / "one"))
    (two,), (one,) = (tmp_path / "two").iterdir(), (tmp_path / "one").iterdir()
    m1, m2 = (json.loads((d / "metrics.json").read_text()) for d in (one, two))
    assert (m1["num_processes"], m2["num_processes"]) == (1, 2)
    assert m1["optimizer_steps"] == m2["optimizer_steps"] == 12
    a, b = load_file(one / "model" / "model.safetensors"), load_file(two / "model" / "model.safetensors")
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-5  # fp32; only reduction order differs


def test_two_processes_analyse_exactly_what_one_does(tmp_path):
    """`mikiwame analyze` under `accelerate launch`: the attribution and prediction batches are split across
    the processes and gathered; every figure equals the one-process result. 131 attributed texts make three
    attribution batches of at most 64 (odd, so the processes get unequal shares), 25 texts for entity swaps."""
    from mikiwame.framework.runner import run

    from .conftest import tiny_config

    run_dir = run(tiny_config(tmp_path / "runs", peft="lora", lr=5e-3, epochs=1))
    # 2 integration steps leave some texts unconverged: the per-text fallback (4 steps) runs across processes too
    limits = ["--shortcuts-max-texts", "131", "--shortcuts-steps", "2", "--entity-bias-max-texts", "25"]
    results = {}
    for processes in (1, 2):
        launch(processes, "-m", "mikiwame.framework.cli", "analyze", str(run_dir), "shortcuts,entity-bias", *limits)
        results[processes] = {
            name: json.loads((run_dir / "analyses" / f"{name}.json").read_text(encoding="utf-8"))
            for name in ("shortcuts", "entity-bias")
        }
    for name, one in results[1].items():
        two = results[2][name]
        assert (one.pop("num_processes"), two.pop("num_processes")) == (1, 2)
        assert one == two, name
    assert results[1]["shortcuts"]["n_texts"] == 131
    assert 0 < results[1]["shortcuts"]["convergence"]["share_integrated_again"] < 1
