"""The default detector judged by the occlusion oracle (benchmarks/shortcut_recall.py) on the bundled headlines with a
livedoor-like series tag planted: recall and precision ≥ 0.9 in each of 3 seeds (nothing flagged where the oracle
finds nothing), nothing with oracle flip rate ≥ 0.7 missed, and the bracketed tag (pure) flagged rather than its
word (impure). The real corpora take minutes
per seed on 2 cores; their table is in docs/shortcuts.md."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ..conftest import REPO

GOAL = 0.9


@pytest.mark.slow
def test_the_detector_finds_what_the_oracle_finds_in_every_seed(tmp_path):
    out = tmp_path / "rows.json"
    subprocess.run(
        [sys.executable, "benchmarks/shortcut_recall.py", "--corpora", "headlines", "--threads", "1", "--output", out],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    rows = json.loads(out.read_text(encoding="utf-8"))
    seeds = [r for r in rows if "seed" in r]
    assert [r["seed"] for r in seeds] == [1, 2, 3]
    for r in seeds:  # a seed whose model does not rely on the tag has nothing to find, and must flag nothing
        assert r["n_reference"] == 0 or r["recall"] >= GOAL, r
        assert r["n_flagged"] == 0 or r["precision"] >= GOAL, r
        assert r["strong_missed"] == []
        assert not any(unit == "話題" for unit, _ in r["flagged"]), "the impure word, not the pure tag"
    found = [r for r in seeds if ["【話題】", "economy"] in r["flagged"]]
    assert len(found) >= 2, "the oracle must find the planted tag in most seeds, or the test proves little"
    assert rows[-1]["jaccard"] is not None
