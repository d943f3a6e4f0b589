"""The example analyzer of docs/writing_analyzers.md, installed as an outside package with an entry point, runs
and shows its section in the terminal and JSON reports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest

from mikiwame.framework.analysis import run_analyzers
from mikiwame.framework.cli import main
from mikiwame.framework.plugins import build_plugin_set

from ..conftest import REPO

DOC = REPO / "docs" / "writing_analyzers.md"
FILE_BLOCK = re.compile(r"<!-- file: (?P<name>\S+) -->\n```\w*\n(?P<body>.*?)```", re.S)


@pytest.fixture
def installed_example(tmp_path, monkeypatch):
    package = tmp_path / "mikiwame-textlength"
    package.mkdir()
    blocks = {m["name"]: m["body"] for m in FILE_BLOCK.finditer(DOC.read_text(encoding="utf-8"))}
    assert set(blocks) == {"pyproject.toml", "mikiwame_textlength.py"}
    for name, body in blocks.items():
        (package / name).write_text(body, encoding="utf-8")
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(package),
        ],
        check=True,
        capture_output=True,
    )
    monkeypatch.syspath_prepend(str(target))
    yield
    sys.modules.pop("mikiwame_textlength", None)


def test_entry_point_analyzer_runs_and_its_section_is_reported(installed_example, planted_run, tmp_path, capsys):
    plugins = build_plugin_set()
    assert "textlength" in plugins.registered_by()
    assert plugins.analyzers.get("text-length").description
    run_dir = shutil.copytree(planted_run, tmp_path / planted_run.name)
    result = run_analyzers(plugins, run_dir, ["text-length"])["text-length"]
    assert set(result["per_label"]) == set(json.loads((run_dir / "metrics.json").read_text())["labels"])

    assert main(["report", str(run_dir), "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["sections"]["text-length"]["data"]["per_label"] == result["per_label"]
    assert main(["report", str(run_dir)]) == 0
    assert "Text length per label" in capsys.readouterr().out
