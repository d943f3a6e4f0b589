"""A received run directory or checkpoint never runs code and never makes mikiwame read or write outside it.

Each test plants a payload (a pickle that creates a marker file when unpickled, a path or symlink that leads
out of the run), runs the command a user would run on it, and checks the payload did not run and nothing
outside the run was read into the output or written. `test_the_planted_pickle_is_live` shows the payload
does run when unpickled, so a test that finds no marker means mikiwame did not unpickle it."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import joblib
import pytest

from mikiwame.framework.errors import RunDirectoryError
from mikiwame.framework.peft_method import resolve_base

from .conftest import TINY, run_cli, run_recipe, tiny_config


class Payload:
    """Unpickling this creates `marker`: it stands for an attacker's `os.system`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def plant_pickle(path: Path, marker: Path) -> Path:
    path.write_bytes(pickle.dumps(Payload(marker)))
    return path


def copy_run(run_dir: Path, tmp: Path) -> Path:
    target = tmp / "received" / run_dir.name
    shutil.copytree(run_dir, target)
    return target


@pytest.fixture(scope="module")
def tfidf_run(tmp_path_factory) -> Path:
    from mikiwame.framework.runner import run

    tmp = tmp_path_factory.mktemp("tfidf")
    return run(tiny_config(tmp, model="tfidf-lr"))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    from mikiwame.framework.runner import run

    return run(tiny_config(tmp_path_factory.mktemp("tiny"), epochs=1, save_every=5, keep_checkpoints=3))


def test_the_planted_pickle_is_live(tmp_path):
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(Payload(marker)))
    assert marker.exists()


def test_tfidf_lr_model_is_saved_without_pickle(tfidf_run):
    names = {p.name for p in (tfidf_run / "model").iterdir()}
    assert {"tfidf_lr.json", "tfidf_lr.safetensors"} <= names
    assert not any(n.endswith((".joblib", ".pkl", ".bin", ".pt")) for n in names)


@pytest.mark.parametrize("command", [["predict", "x"], ["analyze", "errors"]])
def test_a_pickled_tfidf_lr_model_is_refused_not_loaded(tfidf_run, tmp_path, command):
    received = copy_run(tfidf_run, tmp_path)
    for name in ("tfidf_lr.json", "tfidf_lr.safetensors"):
        (received / "model" / name).unlink()
    marker = tmp_path / "ran"
    joblib.dump(Payload(marker), received / "model" / "tfidf_lr.joblib")
    verb, arg = command
    result = run_cli(verb, str(received), arg, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "pickle" in result.stderr and "not loaded" in result.stderr and "Traceback" not in result.stderr
    assert not marker.exists()


def accelerate_style_checkpoint(run_dir: Path, tmp: Path, marker: Path) -> Path:
    """What Accelerate's save_state writes (pickles), beside a real config.json, as a sender could craft it."""
    partial = tmp / "runs" / ".20260101-000000-x.partial"
    step = partial / "checkpoints" / "step-000010"
    step.mkdir(parents=True)
    shutil.copy(run_dir / "config.json", partial / "config.json")
    for name in ("custom_checkpoint_0.pkl", "optimizer.bin", "scheduler.bin", "random_states_0.pkl"):
        plant_pickle(step / name, marker)
    return step


def test_resume_from_an_accelerate_pickle_checkpoint_is_refused(tiny_run, tmp_path):
    marker = tmp_path / "ran"
    step = accelerate_style_checkpoint(tiny_run, tmp_path, marker)
    result = run_recipe("--resume", str(step), "--output-dir", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "no complete checkpoint" in result.stderr and "Traceback" not in result.stderr
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


def test_a_config_naming_a_pickle_checkpoint_is_refused(tiny_run, tmp_path):
    marker = tmp_path / "ran"
    step = accelerate_style_checkpoint(tiny_run, tmp_path, marker)
    config = json.loads((tiny_run / "config.json").read_text())
    config["resume"] = str(step)
    (tmp_path / "c.json").write_text(json.dumps(config))
    result = run_recipe("--config", str(tmp_path / "c.json"), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert not marker.exists()


def test_pickles_planted_in_a_real_checkpoint_are_never_read(tiny_run, tmp_path):
    marker = tmp_path / "ran"
    partial = tmp_path / ".received.partial"
    shutil.copytree(tiny_run / "checkpoints", partial / "checkpoints")
    shutil.copy(tiny_run / "config.json", partial / "config.json")
    step = sorted((partial / "checkpoints").glob("step-*"))[0]
    plant_pickle(step / "custom_checkpoint_0.pkl", marker)
    plant_pickle(step / "pytorch_model.bin", marker)
    result = run_recipe("--resume", str(step), "--output-dir", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert not marker.exists()


def test_saved_config_holds_no_resume(tiny_run):
    assert "resume" not in json.loads((tiny_run / "config.json").read_text())


def with_base(run_dir: Path, tmp: Path, base: str) -> Path:
    received = copy_run(run_dir, tmp)
    record_path = received / "model" / "peft.json"
    record = json.loads(record_path.read_text())
    record["base"] = base
    record_path.write_text(json.dumps(record))
    return received


@pytest.mark.parametrize("kind", ["parent", "absolute", "symlink"])
def test_a_base_model_outside_the_run_is_refused(tiny_run, tmp_path, kind):
    outside = tmp_path / "outside_model"
    shutil.copytree(tiny_run / "model", outside)  # a loadable model: only the path check can stop it
    base = {"parent": "../../outside_model", "absolute": str(outside), "symlink": "base_model"}[kind]
    received = with_base(tiny_run, tmp_path, base)  # tmp/received/NAME: ../../ is tmp
    assert (received / "../../outside_model/peft.json").is_file()
    if kind == "symlink":
        (received / "base_model").symlink_to(outside, target_is_directory=True)
    result = run_cli("predict", str(received), "x", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "outside the run directory" in result.stderr and "Traceback" not in result.stderr


def test_a_hub_id_base_is_allowed_and_a_local_lookalike_refused(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    assert resolve_base(run_dir, "cl-tohoku/bert-base-japanese-v3") == "cl-tohoku/bert-base-japanese-v3"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "secret-model").mkdir()
    with pytest.raises(RunDirectoryError, match="is not inside the run but names"):
        resolve_base(run_dir, "secret-model")


def test_a_plots_symlink_to_a_secret_is_not_embedded(tiny_run, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE")
    received = copy_run(tiny_run, tmp_path)
    (received / "plots" / "confusion_matrix.png").unlink()
    (received / "plots" / "confusion_matrix.png").symlink_to(secret)
    result = run_cli("report", str(received), "--format", "html", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "outside the run directory" in result.stderr
    report = received / "report.html"
    assert not report.exists() or "VE9QLVNFQ1JFVC1WQUxVRQ" not in report.read_text()  # base64 of the secret


@pytest.mark.parametrize("figure", ["absolute", "../../secret.png"])
def test_a_figure_path_written_in_an_analysis_cannot_embed_a_secret(tiny_run, tmp_path, figure):
    secret = tmp_path / "secret.png"
    secret.write_text("TOP-SECRET-VALUE")
    received = copy_run(tiny_run, tmp_path)
    assert run_cli("analyze", str(received), "calibration", cwd=tmp_path).returncode == 0
    analysis = received / "analyses" / "calibration.json"
    result = json.loads(analysis.read_text())
    result["figure"] = str(secret) if figure == "absolute" else figure
    analysis.write_text(json.dumps(result))
    done = run_cli("report", str(received), "--format", "html", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "outside the run directory" in done.stderr
    report = received / "report.html"
    assert not report.exists() or "VE9QLVNFQ1JFVC1WQUxVRQ" not in report.read_text()  # base64 of the secret


def test_an_analyses_symlink_cannot_make_analyzers_write_outside(tiny_run, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    received = copy_run(tiny_run, tmp_path)
    shutil.rmtree(received / "analyses", ignore_errors=True)
    (received / "analyses").symlink_to(outside, target_is_directory=True)
    result = run_cli("analyze", str(received), "errors", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "outside the run directory" in result.stderr
    assert not any(outside.iterdir())


def test_no_pickle_loader_reaches_user_files():
    """The grep of the issue, kept: no pickle, joblib, torch.load without weights_only, or Accelerate
    load_state in the package's code."""
    root = Path(__file__).resolve().parents[1]
    sources = [p for d in ("framework", "plugins", "recipes") for p in (root / d).rglob("*.py")]
    offending = []
    for path in sources:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            code = line.split("#")[0]
            if any(
                s in code for s in ("import pickle", "joblib.", "load_state(", "weights_only=False", "pickle.load")
            ) or ("torch.load(" in code and "weights_only=True" not in code):
                offending.append(f"{path.relative_to(root)}:{number}: {line.strip()}")
    assert not offending, "\n".join(offending)


def test_two_runs_started_together_both_finish_in_their_own_directories(tmp_path):
    import subprocess
    import sys

    from .conftest import RECIPE

    out = tmp_path / "runs"
    args = [sys.executable, str(RECIPE), *TINY, "--train-size", "24", "--output-dir", str(out)]
    env = {**__import__("os").environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env) for _ in range(2)]
    results = [p.communicate(timeout=600) + (p.returncode,) for p in procs]
    assert [r[2] for r in results] == [0, 0], [r[1][-2000:] for r in results]
    finished = sorted(p for p in out.iterdir() if not p.name.startswith("."))
    assert len(finished) == 2
    for run_dir in finished:
        assert (run_dir / "config.json").is_file() and (run_dir / "metrics.json").is_file()


def test_run_names_are_reserved_atomically_and_a_failed_run_deletes_only_its_own(tmp_path):
    from mikiwame.framework.errors import DataError
    from mikiwame.framework.rundir import RunDirectory

    first, second = RunDirectory(tmp_path, "r", stamp="s"), RunDirectory(tmp_path, "r", stamp="s")
    first.create()
    second.create()
    assert first.path != second.path and first.path.is_dir() and second.path.is_dir()
    (first.path / "config.json").write_text("{}")
    never_created = RunDirectory(tmp_path, "r", stamp="s")
    never_created.path = first.path  # as if it had computed the same name and lost the race
    assert never_created.abandon(DataError("x")) is None
    assert (first.path / "config.json").is_file(), "a run must not delete a directory it did not create"
    second.abandon(DataError("x"))
    assert not second.path.exists()
    (tmp_path / "s-r").mkdir()  # another run finished under the name meanwhile
    (tmp_path / "s-r" / "metrics.json").write_text("{}")
    final = first.finish()
    assert final.name == "s-r-2" and (final / "config.json").is_file()
    assert (tmp_path / "s-r" / "metrics.json").read_text() == "{}"
