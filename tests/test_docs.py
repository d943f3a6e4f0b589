"""The docs stay true where a test can tell: every hook documented with its arguments, every option of the
README's tables and every `mikiwame` command the docs name exists, every script they name is there, and the
core names a plugin only where docs/architecture.md says it does."""

from __future__ import annotations

import argparse
import ast
import inspect
import re

from mikiwame.framework import hookspecs
from mikiwame.framework.cli import build_parser
from mikiwame.framework.config import RunConfig
from mikiwame.framework.discussion import TITLES_JA
from mikiwame.framework.plugins import build_plugin_set
from mikiwame.framework.recipe import build_command_line

from .conftest import REPO

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
#: the plugins the core names, as docs/architecture.md says: the default task, the reporter of `mikiwame
#: analyze`/`report`, and the Japanese titles of the built-in sections; plus names that are something else there
#: (`json` a file format, `transformers` a package, `dropout` an option)
NAMED_BY_THE_CORE = {"headlines", "terminal", *TITLES_JA, "json", "transformers", "dropout"}


def hookspec_functions() -> list:
    return [f for name, f in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("mikiwame_")]


def test_every_hook_is_documented_with_its_arguments():
    text = (REPO / "docs" / "plugin_hooks.md").read_text(encoding="utf-8")
    assert len(hookspec_functions()) >= 13
    missing = [
        f"{spec.__name__}({', '.join(inspect.signature(spec).parameters)})"
        for spec in hookspec_functions()
        if f"`{spec.__name__}({', '.join(inspect.signature(spec).parameters)})`" not in text
    ]
    assert missing == []


def every_option_string() -> set[str]:
    """Every option of a recipe and of every `mikiwame` command, old names included."""
    plugins = build_plugin_set()
    parsers = [build_command_line("test", RunConfig(), plugins)[0].argparse_parser]
    top = build_parser(plugins)
    for action in top._actions:
        if isinstance(action, argparse._SubParsersAction):
            parsers += list(action.choices.values())
    return {flag for parser in parsers for action in parser._actions for flag in action.option_strings}


def test_every_option_in_the_readmes_tables_exists():
    rows = [line for line in (REPO / "README.md").read_text(encoding="utf-8").splitlines() if line.startswith("| `")]
    named = {flag for row in rows for flag in re.findall(r"(--[a-z][a-z-]*)", row.split("|")[1])}
    assert len(named) > 15
    assert named - every_option_string() == set()


def test_the_checks_see_a_missing_option_and_command():
    assert "--no-such-option" not in every_option_string() and "--csv-encoding" in every_option_string()
    assert "no-such-command" not in mikiwame_commands()


def mikiwame_commands() -> set[str]:
    top = build_parser(build_plugin_set())
    return {
        name for action in top._actions if isinstance(action, argparse._SubParsersAction) for name in action.choices
    }


def test_every_command_and_script_the_docs_name_exists():
    named: dict[str, set[str]] = {}
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for command in re.findall(r"(?:`|\$ |^)mikiwame ([a-z][a-z-]*)(?= |`|$)", text, re.MULTILINE):
            named.setdefault(command, set()).add(doc.name)
        for script in re.findall(r"\b((?:recipes|benchmarks)/[a-z_]+\.py)", text):
            assert (REPO / script).is_file(), f"{doc.name} names {script}"
    prose = {"is", "fine-tunes"}  # sentences that start with the project's name
    assert {command for command in named if command not in prose} - mikiwame_commands() == set(), named


def test_the_core_names_a_plugin_only_where_the_architecture_doc_says():
    registered = {entry.name for registry in build_plugin_set().registries.values() for entry in registry}
    named = {
        node.value
        for path in (REPO / "framework").glob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Constant) and node.value in registered
    }
    assert named - NAMED_BY_THE_CORE == set()
    assert "`headlines`" in (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
