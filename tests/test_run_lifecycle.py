"""How a run ends when it is stopped: SIGTERM and a second Ctrl-C end with a message and no traceback, leaving no
partial folder (or one the message says how to resume); a run stopped during its live analyzers says so."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mikiwame.framework import hookimpl
from mikiwame.framework.analysis import Analyzer
from mikiwame.framework.cli import main
from mikiwame.framework.plugins import build_plugin_set
from mikiwame.framework.results import RunResults
from mikiwame.framework.rundir import PENDING_ANALYSES
from mikiwame.framework.runner import run

from .conftest import RECIPE, TINY, tiny_config


def started_then_signalled(out: Path, signals: list[int]) -> subprocess.CompletedProcess:
    """The recipe in a fresh interpreter, sent `signals` (50 ms apart) once its partial run directory exists."""
    args = [sys.executable, str(RECIPE), *TINY, "--epochs", "30", "--train-size", "24", "--output-dir", str(out)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 300
    while not (out.is_dir() and any(p.name.endswith(".partial") for p in out.iterdir())):
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        assert time.monotonic() < deadline, "the run never created its directory"
        time.sleep(0.05)
    for number in signals:
        proc.send_signal(number)
        time.sleep(0.05)
    stdout, stderr = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(args, proc.returncode, stdout, stderr)


@pytest.mark.parametrize(
    ("signals", "code", "said"),
    [
        ([signal.SIGTERM, signal.SIGTERM], 143, "mikiwame: terminated (SIGTERM)"),
        ([signal.SIGINT, signal.SIGINT, signal.SIGINT], 130, "mikiwame: interrupted"),
    ],
    ids=["sigterm-twice", "ctrl-c-three-times"],
)
def test_a_stopped_run_ends_with_a_message_and_leaves_no_unexplained_partial_folder(tmp_path, signals, code, said):
    out = tmp_path / "runs"
    result = started_then_signalled(out, signals)
    assert result.returncode == code, result.stderr[-3000:]
    assert said in result.stderr and "Traceback" not in result.stderr, result.stderr[-3000:]
    left = [p for p in out.iterdir() if p.name.endswith(".partial")]
    for partial in left:  # kept only with a complete checkpoint, and then the message says how to resume
        assert f"partial run kept at {partial}; continue with --resume" in result.stderr
    assert not [p for p in out.iterdir() if not p.name.startswith(".")], "a stopped run must not look finished"


class StoppedAnalyzer(Analyzer):
    """Stands for a run stopped (a crash, Ctrl-C, SIGTERM) while its live analyzers run."""

    name = "stopped"
    description = "raises, as a run stopped during its analyzers"

    def analyze(self, context):
        raise RuntimeError("stopped during the analyzers")


class StoppedPlugin:
    @hookimpl
    def mikiwame_register_analyzers(self, register):
        register(StoppedAnalyzer())


def test_a_run_stopped_during_its_live_analyzers_says_so_in_report_and_analyze_completes_it(tmp_path, capsys):
    plugins = build_plugin_set(extra=[("stopped", StoppedPlugin())])
    out = tmp_path / "runs"
    with pytest.raises(RuntimeError):
        run(tiny_config(out, epochs=1, train_size=30, analyze=("token-stats", "stopped", "errors")), plugins)
    (run_dir,) = out.iterdir()
    assert RunResults.load(run_dir).pending_analyses == ["stopped", "errors"]  # token-stats finished
    assert main(["report", str(run_dir)]) == 0
    shown = capsys.readouterr().out
    assert "analyses incomplete" in shown and "mikiwame analyze" in shown and "stopped,errors" in shown
    assert main(["analyze", str(run_dir), "errors"]) == 0  # the control: what analyze completes is struck off
    assert RunResults.load(run_dir).pending_analyses == ["stopped"]
    shown = capsys.readouterr().out  # analyze's own report already shows errors done
    assert "analyses incomplete" in shown and "stopped,errors" not in shown
    (run_dir / PENDING_ANALYSES).unlink()
    capsys.readouterr()
    assert main(["report", str(run_dir)]) == 0
    assert "analyses incomplete" not in capsys.readouterr().out
