"""A received run's model config (model/config.json) read through an allow-list before transformers sees it:
remote code, kernel settings and a non-local attention implementation are refused in one message naming the
file and the keys, before anything is fetched; eager or sdpa attention (what a run may save) still loads."""

from __future__ import annotations

import json
import os

import pytest

from mikiwame.framework.cli import main

from .conftest import received_copy

UNSAFE = {
    "auto_map": {"AutoModelForSequenceClassification": "evil.Model"},
    "trust_remote_code": True,
    "custom_pipelines": {"text-classification": {"impl": "evil.Pipe"}},
    "_attn_implementation": "kernels-community/flash-attn",
    "attn_implementation": "kernels-community/vllm-flash-attn3",
    "use_kernels": True,
    "text_config": {"auto_map": {"AutoModel": "evil.Model"}},
}


def with_model_config(run_dir, tmp_path, key, value):
    copy = received_copy(run_dir, tmp_path)
    path = copy / "model" / "config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config[key] = value
    path.write_text(json.dumps(config), encoding="utf-8")
    return copy


@pytest.mark.parametrize("key", list(UNSAFE))
def test_remote_code_or_kernels_in_a_received_model_config_are_refused(analysed_run, tmp_path, capsys, key):
    copy = with_model_config(analysed_run, tmp_path, key, UNSAFE[key])
    with pytest.raises(SystemExit) as exit_:
        main(["predict", str(copy), "試合に勝った"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "Traceback" not in err and err.startswith("mikiwame: error:"), err
    assert "config.json" in err and key in err and "code or kernels" in err


@pytest.mark.parametrize("value", ["sdpa", "eager"])
def test_a_local_attention_implementation_still_loads(analysed_run, tmp_path, capsys, value):
    copy = with_model_config(analysed_run, tmp_path, "_attn_implementation", value)
    assert main(["predict", str(copy), "試合に勝った", "--format", "jsonl"]) == 0
    assert json.loads(capsys.readouterr().out)["text"] == "試合に勝った"


@pytest.mark.parametrize("name", ["config.json", "tokenizer_config.json"])
def test_a_fifo_in_place_of_a_model_setting_file_is_refused_not_waited_on(analysed_run, tmp_path, capsys, name):
    copy = received_copy(analysed_run, tmp_path)
    (copy / "model" / name).unlink()
    os.mkfifo(copy / "model" / name)
    with pytest.raises(SystemExit) as exit_:
        main(["predict", str(copy), "試合に勝った"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and name in err and "not a regular file" in err, err
