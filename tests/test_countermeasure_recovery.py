"""The countermeasure benchmark's core (benchmarks/countermeasure_recovery.py) on one planted shape and one seed:
the shortcut misleads the untreated model on the anti-correlated test split (its accuracy well under the
oracle's: the control), and the cure brings the accuracy to at least 90% of the oracle's (a model trained with
the tag cut out of its data), on a unit the real `shortcuts` analyzer flagged."""

from __future__ import annotations

import sys

import pytest

from .conftest import REPO, one_torch_thread

sys.path.insert(0, str(REPO / "benchmarks"))

from countermeasure_recovery import recover  # noqa: E402
from planted_shapes import SHAPES  # noqa: E402


@pytest.mark.slow
def test_the_best_shortcut_cure_recovers_90_percent_of_the_oracle(tmp_path):
    shape = next(s for s in SHAPES if s.name == "source-bar")  # full-width ｜: the analyzer keys it |ABC通信
    with one_torch_thread():
        result = recover(shape, tmp_path, seeds=1, cures=["shortcut-augment"], epochs=3)
    assert (shape.unit, "sports") in [tuple(f) for f in result["flagged"]]
    (row,) = [r for r in result["rows"] if r["unit"] == shape.unit]
    assert result["baseline_accuracy"] / result["oracle_accuracy"] < 0.6  # the planted shortcut misleads
    assert row["recovery"] >= 0.9
    assert row["shift_set"]["baseline"] < 0.2 and row["shift_set"]["interval"][0] > 0
