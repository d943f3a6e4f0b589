"""A wheel of mikiwame works without the source tree: built as pip builds it, installed (no editable install)
into a new venv, run from another folder. Its bundled data (headlines, entity lists) must come from the
installed package, so the main recipe with entity-bias and errors, and `mikiwame predict`, run there.

The new venv reuses this environment's installed dependencies through a path file (their .pth hooks, such as
an editable mikiwame's finder, are not run from there), so the test costs a wheel build, not a torch install."""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from .conftest import RECIPE, REPO, TINY, finished_runs

pytestmark = pytest.mark.slow


def _run(command: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    environment.update(HF_HUB_OFFLINE="1", COLUMNS="200", PYTHONSAFEPATH="1")
    result = subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=environment, timeout=timeout)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(root / "dist"), str(REPO)], cwd=root)
    (wheel,) = (root / "dist").glob("mikiwame-*.whl")
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=root)
    python = venv / "bin" / "python"
    where = "import sysconfig; print(sysconfig.get_path('purelib'))"
    purelib = Path(_run([str(python), "-c", where], cwd=root).stdout.strip())
    dependencies = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib"), *site.getsitepackages()}
    (purelib / "mikiwame-test-dependencies.pth").write_text("\n".join(sorted(dependencies)) + "\n", encoding="utf-8")
    _run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)], cwd=root)
    return venv


def test_the_installed_wheel_owns_its_code_and_data(wheel_venv):
    python = wheel_venv / "bin" / "python"
    probe = (
        "import json, mikiwame.data, mikiwame.framework.entities as e; "
        "print(json.dumps([mikiwame.data.__file__, str(e.LISTS)]))"
    )
    files = json.loads(_run([str(python), "-c", probe], cwd=wheel_venv).stdout)
    for file in files:
        assert Path(file).resolve().is_relative_to(wheel_venv.resolve()), f"{file} is not the installed copy"
        assert not Path(file).resolve().is_relative_to(REPO), f"{file} comes from the source tree"


def test_main_recipe_analyzers_and_predict_run_from_the_wheel(wheel_venv, tmp_path):
    python, command = wheel_venv / "bin" / "python", wheel_venv / "bin" / "mikiwame"
    runs = tmp_path / "runs"
    _run([str(python), str(RECIPE), *TINY, "--analyze", "entity-bias,errors", "--output-dir", str(runs)], cwd=tmp_path)
    (run_dir,) = finished_runs(runs)
    assert {"entity-bias.json", "errors.json"} <= {p.name for p in (run_dir / "analyses").iterdir()}
    bias = json.loads((run_dir / "analyses" / "entity-bias.json").read_text(encoding="utf-8"))
    assert bias["swaps"]["n"] > 0, "entity-bias swapped nothing: the shipped entity lists were not read"
    labels = {row["gold"] for row in map(json.loads, (run_dir / "predictions.jsonl").open(encoding="utf-8"))}
    out = _run([str(command), "predict", str(run_dir), "日銀が追加利上げを決定"], cwd=tmp_path).stdout
    line = next(line for line in out.splitlines() if "日銀が追加利上げを決定" in line)
    assert any(label in line for label in labels), line
