"""Every recipe ends a user error the same way: one `mikiwame: error:` message on stderr, exit status 2, no
traceback (framework/runner.py `user_errors_exit`)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

RECIPES = Path(__file__).resolve().parents[1] / "recipes"

MISTAKES = {
    "lora_headlines": ["--epochs", "0"],
    "entity_bias_mitigation": ["--epochs", "0"],
    "before_after": ["--epochs", "0"],
    "compare_peft": ["--seeds", "0"],
    "pretrain_mlm": ["--text-from", "no-such-corpus.txt", "--output-dir", "unused"],
}


def test_every_recipe_has_a_planted_mistake():
    assert sorted(MISTAKES) == sorted(p.stem for p in RECIPES.glob("*.py"))


@pytest.mark.parametrize("recipe", sorted(MISTAKES))
def test_a_user_error_in_a_recipe_exits_2_with_one_message_and_no_traceback(recipe, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = importlib.util.spec_from_file_location(f"recipe_{recipe}", RECIPES / f"{recipe}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # its dataclasses look their module up by name
    spec.loader.exec_module(module)
    with pytest.raises(SystemExit) as exited:
        module.main(MISTAKES[recipe])
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert err.count("mikiwame: error:") == 1 and err.startswith("mikiwame: error:")
    assert "Traceback" not in err
    assert ("0" in err) if recipe != "pretrain_mlm" else ("no-such-corpus.txt" in err)
