"""docs/tutorial.md cannot rot: every `$ ` command of its console blocks runs here, in order, as a user types
it, in one scratch folder that holds the repository's recipes/ and data/. Commands on the shared corpora run
where they are present and skip with the reason where they are not.

MIKIWAME_TUTORIAL_TRANSCRIPT=DIR keeps each command's output there (how the guide's excerpts were made)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from .conftest import REPO, SHARED_ENV, shared_data

TUTORIAL = REPO / "docs" / "tutorial.md"
SHARED_IN_DOCS = "../shared/data"


def tutorial_commands(markdown: str) -> list[str]:
    """The `$ ` lines of ```console blocks, with backslash continuations joined."""
    commands: list[str] = []
    in_console = False
    pending: list[str] = []
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_console, pending = line.strip() == "```console", []
            continue
        if not in_console or not (pending or line.startswith("$ ")):
            continue
        part = line[2:] if not pending else line.strip()
        pending.append(part.rstrip().removesuffix("\\").strip())
        if not line.rstrip().endswith("\\"):
            commands.append(" ".join(pending))
            pending = []
    return commands


COMMANDS = tutorial_commands(TUTORIAL.read_text(encoding="utf-8"))


def test_the_tutorial_parser_joins_continuations_and_ignores_output():
    markdown = "```console\n$ echo a \\\n    b   # note\noutput line\n$ echo c\n```\n```text\n$ not run\n```\n"
    assert tutorial_commands(markdown) == ["echo a b   # note", "echo c"]


def test_the_tutorial_covers_the_course_assignments():
    joined = "\n".join(COMMANDS)
    for piece in (
        "--model cloze",
        "--peft lora",
        "--train-size",
        "--analyze errors,token-stats,curves",
        "shortcuts",
        "entity-bias",
        "entity_bias_mitigation.py",
        "compare_peft.py",
        "--grad-accum",
        "--format html",
        "--format markdown",
        "--lang ja",
        "--patience",
    ):
        assert piece in joined, f"docs/tutorial.md runs no command with {piece}"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tutorial")
    for name in ("recipes", "data"):
        (folder / name).symlink_to(REPO / name)
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("number", range(len(COMMANDS)), ids=[f"step{i + 1:02d}" for i in range(len(COMMANDS))])
def test_tutorial_command_runs(number: int, workdir: Path):
    command = COMMANDS[number]
    if SHARED_IN_DOCS in command:
        command = command.replace(SHARED_IN_DOCS, str(shared_data()))
        for path in re.findall(re.escape(str(shared_data())) + r"\S*", command):
            if not Path(path).exists():
                pytest.skip(f"{path} is absent ({SHARED_ENV} or ../shared/data holds the corpora)")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "120", "MIKIWAME_CACHE_DIR": str(workdir / ".cache")}
    done = subprocess.run(command, shell=True, cwd=workdir, env=env, capture_output=True, text=True, timeout=900)
    transcript = os.environ.get("MIKIWAME_TUTORIAL_TRANSCRIPT")
    if transcript:
        kept = Path(transcript, f"{number + 1:02d}.txt")
        kept.parent.mkdir(parents=True, exist_ok=True)
        kept.write_text(f"$ {command}\n{done.stdout}{done.stderr}", encoding="utf-8")
    assert done.returncode == 0, f"$ {command}\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
