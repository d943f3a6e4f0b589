"""A received cloze or icl run's setup files (model/cloze.json, model/icl.json, model/icl_pool.jsonl) read through
the validation layer: a wrong-typed or out-of-range value, or a demonstration with a label the run does not have,
is one message naming the file (and the key) before any language model loads, never a traceback."""

from __future__ import annotations

import pytest

from mikiwame.framework.cli import main

from ..test_model_kinds import trained  # noqa: F401  # the module's fixture: each model kind's finished run
from .conftest import received_copy, set_key

CLOZE = [
    (("max_length",), "x"),
    (("max_length",), 10**9),
    (("templates",), {}),
    (("verbalizers",), {"sports": []}),
    (("score",), "evil"),
    (("chosen",), None),
    (("content_free",), "x"),
]
ICL = [
    (("k",), -1),
    (("seed",), -1),
    (("cot_tokens",), "x"),
    (("format",), {}),
    (("format",), {"demonstration": 5, "query": "", "separator": "", "reasoning_query": "", "answer": ""}),
    (("verbalizers",), "x"),
    (("prompt_file",), None),
]
CASES = [("cloze", "cloze.json", *case) for case in CLOZE] + [("icl", "icl.json", *case) for case in ICL]


def refused(run_dir, capsys) -> str:
    with pytest.raises(SystemExit) as exit_:
        main(["predict", str(run_dir), "試合に勝った"])
    err = capsys.readouterr().err  # the first case also holds the fixture's training output
    assert exit_.value.code == 2 and "mikiwame: error:" in err and "Traceback" not in err, err
    message = err[err.index("mikiwame: error:") :]
    assert message.count("\n") <= 2, message
    return message


@pytest.mark.parametrize(("kind", "name", "keys", "value"), CASES, ids=[f"{n}-{k[0]}={v!r}" for _, n, k, v in CASES])
def test_a_damaged_prompt_setup_is_one_message_naming_file_and_key(trained, tmp_path, capsys, kind, name, keys, value):  # noqa: F811
    copy = received_copy(trained(kind), tmp_path)
    set_key(copy / "model" / name, keys, value)
    err = refused(copy, capsys)
    assert name in err and keys[0] in err


@pytest.mark.parametrize("row", ['{"text": "x", "label": "nonsense"}', '{"text": 5, "label": "sports"}', "{"])
def test_a_damaged_demonstration_pool_is_one_message_naming_the_file(trained, tmp_path, capsys, row):  # noqa: F811
    copy = received_copy(trained("icl"), tmp_path)
    with (copy / "model" / "icl_pool.jsonl").open("a", encoding="utf-8") as fh:
        fh.write(row + "\n")
    assert "icl_pool.jsonl" in refused(copy, capsys)
