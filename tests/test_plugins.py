"""The plugin core: registration through hooks, clashes named, typos suggested, broken plugins isolated,
loading limited by MIKIWAME_PLUGINS, and every hook documented and exercised."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

import mikiwame.plugins as built_in
from mikiwame.framework import hookimpl, hookspecs, plugins
from mikiwame.framework.analysis import Analyzer
from mikiwame.framework.errors import ConfigError, PluginError
from mikiwame.framework.peft_method import PeftMethod
from mikiwame.framework.plugins import build_plugin_set

REPO = Path(__file__).resolve().parents[1]


class _TaskRegistrar:
    """An outside plugin that registers a task under a chosen name."""

    def __init__(self, name: str) -> None:
        self.task = type("T", (), {"name": name, "description": "test", "load": lambda self, c: None})()

    @hookimpl
    def mikiwame_register_tasks(self, register):
        register(self.task)


def test_default_plugins_register_the_built_ins():
    ps = build_plugin_set()
    assert {"headlines"} <= set(ps.tasks.names())
    assert {"lora", "full"} <= set(ps.peft_methods.names())
    assert {"tiny", "transformers"} <= set(ps.models.names())
    assert "terminal" in ps.reporters.names()
    assert ps.failures == []
    assert ps.registered_by()["lora"] == {"peft_methods": ["lora"]}


def test_a_duplicate_name_is_rejected_naming_both_plugins():
    with pytest.raises(PluginError, match=r"registered twice: by plugin 'headlines' and by plugin 'intruder'"):
        build_plugin_set(extra=[("intruder", _TaskRegistrar("headlines"))])


def test_an_outside_plugin_adds_a_task():
    ps = build_plugin_set(extra=[("mine", _TaskRegistrar("my-task"))])
    assert "my-task" in ps.tasks
    assert ps.registered_by()["mine"] == {"tasks": ["my-task"]}


def test_a_typo_gets_the_near_name():
    ps = build_plugin_set()
    with pytest.raises(ConfigError, match=r"unknown task 'headline'\. Did you mean 'headlines'\?"):
        ps.tasks.get("headline", option="--task")


def test_a_plugin_that_fails_to_import_is_reported_and_the_others_load(tmp_path, monkeypatch):
    (tmp_path / "broken_plugin.py").write_text("import no_such_module_here\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(built_in, "BUILT_IN", (*built_in.BUILT_IN, "broken_plugin"))
    ps = build_plugin_set()
    assert [f.name for f in ps.failures] == ["broken_plugin"]
    assert "no_such_module_here" in ps.failures[0].error
    assert "headlines" in ps.tasks
    sys.modules.pop("broken_plugin", None)


def test_mikiwame_plugins_limits_what_loads(monkeypatch):
    monkeypatch.setenv(plugins.PLUGINS_ENV, "headlines,full,head_only")
    ps = build_plugin_set()
    assert ps.tasks.names() == ["headlines"]
    assert ps.peft_methods.names() == ["full", "head-only"]
    assert ps.models.names() == []


def test_every_hookspec_is_documented_and_exercised_by_a_test():
    names = [n for n in dir(hookspecs) if n.startswith("mikiwame_")]
    assert len(names) >= 11
    docs = (REPO / "docs" / "plugin_hooks.md").read_text(encoding="utf-8")
    tests = "".join(
        p.read_text(encoding="utf-8") for p in (REPO / "tests").rglob("test_*.py") if p.name != Path(__file__).name
    )
    undocumented = [n for n in names if not re.search(rf"^#+ .*`{n}", docs, re.M)]
    untested = [n for n in names if n not in tests]
    assert undocumented == []
    assert untested == []


class _Registers:
    """An outside plugin that registers one PEFT method and one analyzer, as given."""

    def __init__(self, method: object = None, analyzer: object = None) -> None:
        self.method, self.analyzer = method, analyzer

    @hookimpl
    def mikiwame_register_peft_methods(self, register):
        if self.method is not None:
            register(self.method)

    @hookimpl
    def mikiwame_register_analyzers(self, register):
        if self.analyzer is not None:
            register(self.analyzer)


class _Method(PeftMethod):
    """A PEFT method that inherits the optional members' defaults."""

    name, family = "outside-method", "test"

    def default_lr(self, pretrained):
        return 1e-3

    def apply(self, model, config):
        return model

    def save(self, model, directory):
        pass

    def load(self, directory, base, labels):
        return None


class _UndeclaredMethod:
    """The same method written to the Protocol's shape, without the optional members."""

    name, family = "undeclared", "test"
    default_lr, apply, save, load = _Method.default_lr, _Method.apply, _Method.save, _Method.load


class _WrongApply(_Method):
    name = "wrong-apply"

    def apply(self, model):
        return model


class _StringFlag(Analyzer):
    name, description, needs_gradients = "string-flag", "a flag given as text", "yes"

    def analyze(self, context):
        return {}


def test_an_outside_plugin_that_subclasses_the_contract_gets_its_defaults():
    ps = build_plugin_set(extra=[("mine", _Registers(_Method()))])
    method = ps.peft_methods.get("outside-method")
    assert method.trains_every_weight is False and method.merge is None
    assert ps.peft_methods.get("lora").merge is not None and ps.peft_methods.get("full").trains_every_weight


@pytest.mark.parametrize(
    ("registered", "message"),
    [
        (
            _Registers(method=_UndeclaredMethod()),
            r"plugin 'mine' registered peft method 'undeclared', whose `trains_every_weight` is missing\n"
            r"Fix: subclass framework\.peft_method\.PeftMethod to inherit `trains_every_weight = False`, or declare it",
        ),
        (
            _Registers(method=_WrongApply()),
            r"plugin 'mine' registered peft method 'wrong-apply', whose `apply` cannot take its 2 argument\(s\): "
            r"it is apply\(model\)\nFix: declare `apply` on _WrongApply",
        ),
        (
            _Registers(analyzer=_StringFlag()),
            r"plugin 'mine' registered analyzer 'string-flag', whose `needs_gradients` is 'yes', not a bool",
        ),
    ],
    ids=["optional-member-missing", "method-cannot-take-its-arguments", "value-of-the-wrong-type"],
)
def test_a_registration_that_breaks_its_contract_names_the_plugin_the_member_and_the_fix(registered, message):
    with pytest.raises(PluginError, match=message):
        build_plugin_set(extra=[("mine", registered)])


class _OrderedRegistrar(_TaskRegistrar):
    @hookimpl(tryfirst=True)
    def mikiwame_register_tasks(self, register):
        register(self.task)


def test_an_order_mark_on_a_registration_hook_is_refused():
    with pytest.raises(PluginError, match=r"plugin 'ordered' marks its mikiwame_register_tasks tryfirst"):
        build_plugin_set(extra=[("ordered", _OrderedRegistrar("ordered-task"))])
