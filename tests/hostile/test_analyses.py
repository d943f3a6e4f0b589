"""Hostile values in a received run's analyses/*.json: each is refused in one message naming the file, the key
and the fix (re-run the analyzer), or, where the value is one the analyzer may write, rendered; never a
traceback from a reporter. Before the analyzers' schemas these were about 70 tracebacks."""

from __future__ import annotations

import pytest

from mikiwame.framework.cli import main

from .conftest import received_copy, set_key

KEYS = {
    "calibration": [("splits",), ("splits", "test", "n"), ("splits", "test", "accuracy"), ("figure",)],
    "curves": [("runs",), ("runs", 0, "epochs", 0, "train_loss"), ("runs", 0, "diagnosis"), ("rule",)],
    "token-stats": [("top",), ("prior",), ("alpha",), ("warnings",)],
    "errors": [
        ("errors",),
        ("errors", "test", "accuracy", "value"),
        ("slices",),
        ("most_confident_errors",),
        ("train_dynamics", "late_or_never"),
    ],
    "shortcuts": [("candidates",), ("thresholds", "min_support"), ("convergence",), ("n_texts",)],
    "entity-bias": [("swaps",), ("swaps", "flip_rate"), ("entities",), ("templates",)],
}
BAD = ["x", -1, None]
#: values that are not refused: what an analyzer may write itself (no convergence figures, no entity found), a
#: figure's path or a rule's text shown as written, a loss as recorded
VALID = {
    ("shortcuts", "convergence", "None"),
    ("entity-bias", "swaps", "None"),
    ("calibration", "figure", "'x'"),
    ("curves", "train_loss", "-1"),
    ("curves", "rule", "'x'"),
}
CASES = [(name, keys, value) for name, paths in KEYS.items() for keys in paths for value in BAD]


def expected_outcome(name: str, keys: tuple, value: object) -> str:
    return "handled" if (name, keys[-1], repr(value)) in VALID else "message"


@pytest.mark.parametrize(
    ("name", "keys", "value"), CASES, ids=[f"{n}-{'.'.join(map(str, k))}-{v!r}" for n, k, v in CASES]
)
def test_a_damaged_analysis_is_one_message_naming_file_key_and_fix(analysed_run, tmp_path, capsys, name, keys, value):
    copy = received_copy(analysed_run, tmp_path)
    set_key(copy / "analyses" / f"{name}.json", keys, value)
    try:
        main(["report", str(copy), "--format", "html"])
        outcome = "handled"
    except SystemExit as exit_:
        assert exit_.code == 2
        outcome = "message"
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert outcome == expected_outcome(name, keys, value), err
    if outcome == "message":
        assert err.startswith("mikiwame: error:") and err.count("\n") <= 2, err
        assert f"{name}.json" in err and str(keys[0]) in err and f"mikiwame analyze {copy} {name}" in err, err
