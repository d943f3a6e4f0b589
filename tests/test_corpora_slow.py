"""End-to-end runs on the real corpora, kept small (--train-size 200, one epoch); skipped without ../shared. Their
findings (考察) keep the two rules on real rows."""

from __future__ import annotations

import json

import pytest

from .analyzers.conftest import assert_findings_rules, saved_findings
from .conftest import TINY, finished_runs, run_recipe, shared_file

CORPORA = [
    ("livedoor", "livedoor/ldcc-20140209.tar.gz", 9, 737),
    ("jrte-pn", "jrte/pn.tsv", 3, 553),
]


@pytest.mark.slow
@pytest.mark.parametrize(("task", "relative", "labels", "test_n"), CORPORA, ids=[c[0] for c in CORPORA])
def test_recipe_runs_end_to_end_on_the_corpus(tmp_path, task, relative, labels, test_n):
    data = shared_file(relative)
    out = tmp_path / "runs"
    args = ["--task", task, "--data", str(data), *TINY, "--train-size", "200", "--output-dir", str(out)]
    args += ["--analyze", "calibration"]
    result = run_recipe(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    [run_dir] = finished_runs(out)
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    assert len(metrics["labels"]) == labels
    assert metrics["after"]["test"]["n"] == test_n
    checks = json.loads((run_dir / "data_checks.json").read_text(encoding="utf-8"))
    assert sum(checks["label_counts"]["train"].values()) == 200
    assert "truncation" in checks
    assert_findings_rules(saved_findings(run_dir))
