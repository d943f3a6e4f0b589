"""The one plugin manager: in-repo default plugins, then the `mikiwame` entry-point group, then the
registries filled through the `register_*` hooks.

Set MIKIWAME_PLUGINS to a comma-separated list of plugin names to load only those (handy in tests and when a
third-party plugin is broken); `mikiwame plugins` shows every name.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import os
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pluggy
from pluggy import HookImpl

from . import hookspecs
from .analysis import Analyzer
from .countermeasure import Countermeasure
from .errors import PluginError
from .models import ModelSource
from .options import CommandLine, add_options, field_types
from .peft_method import PeftMethod
from .registry import Registry
from .results import Reporter
from .task import Task

BUILT_IN_PACKAGE = "mikiwame.plugins"  # its BUILT_IN names the modules loaded first
ENTRY_POINT_GROUP = "mikiwame"
PLUGINS_ENV = "MIKIWAME_PLUGINS"

REGISTRATION_HOOKS = {
    "tasks": "mikiwame_register_tasks",
    "models": "mikiwame_register_models",
    "peft_methods": "mikiwame_register_peft_methods",
    "analyzers": "mikiwame_register_analyzers",
    "reporters": "mikiwame_register_reporters",
    "countermeasures": "mikiwame_register_countermeasures",
}


@dataclass(frozen=True)
class PluginFailure:
    name: str
    error: str


@dataclass
class PluginSet:
    """The plugin manager and one registry per kind, each typed with its kind's contract (the checker holds
    the core's use of a plugin to it; the registry checks every registration against it at run time)."""

    pm: pluggy.PluginManager
    tasks: Registry[Task]
    models: Registry[ModelSource]
    peft_methods: Registry[PeftMethod]
    analyzers: Registry[Analyzer]
    reporters: Registry[Reporter]
    countermeasures: Registry[Countermeasure]
    failures: list[PluginFailure] = field(default_factory=list)

    @property
    def hook(self) -> Any:
        return self.pm.hook

    @property
    def registries(self) -> dict[str, Registry[Any]]:
        """kind (as in REGISTRATION_HOOKS) -> its registry."""
        return {kind: getattr(self, kind) for kind in REGISTRATION_HOOKS}

    def option_classes(self) -> list[tuple[str, type]]:
        """(plugin name, options dataclass) of every plugin that declares typed options."""
        declared: list[tuple[str, type]] = []
        for impl in each_plugin(self.pm, "mikiwame_options"):
            options = impl.function()
            if isinstance(options, type):
                declared.append((impl.plugin_name, options))
        return declared

    def option_types(self) -> dict[str, Any]:
        """Option name -> type, over every plugin's options: what a saved config's `options` are checked against."""
        return {name: hint for _, cls in self.option_classes() for name, hint in field_types(cls).items()}

    def add_options(self, command_line: CommandLine, defaults: Mapping[str, Any] | None = None) -> list[str]:
        """Every plugin's typed options, then the free-form ones of `mikiwame_add_arguments`, on a recipe's
        command line or `mikiwame analyze`; returns the names added (stored in `config.options`)."""

        def add(parser: Any) -> None:
            for name, cls in self.option_classes():
                add_typed = functools.partial(add_options, cls=cls, title=group_title(cls, name), defaults=defaults)
                command_line.dests_added_by(add_typed, owner=name)
            for impl in reversed(self.hook.mikiwame_add_arguments.get_hookimpls()):  # pluggy's call order
                others = [plugin for plugin in self.pm.get_plugins() if plugin is not impl.plugin]
                add_free = self.pm.subset_hook_caller("mikiwame_add_arguments", remove_plugins=others)
                command_line.dests_added_by(functools.partial(_call_with_parser, add_free), owner=impl.plugin_name)

        return command_line.dests_added_by(add)

    def registered_by(self) -> dict[str, dict[str, list[str]]]:
        """plugin name -> kind -> names it registered; what `mikiwame plugins` prints."""
        table: dict[str, dict[str, list[str]]] = {name: {} for name, _ in self.pm.list_name_plugin()}
        for kind, registry in self.registries.items():
            for entry in registry:
                table.setdefault(entry.plugin, {}).setdefault(kind, []).append(entry.name)
        return table


def _call_with_parser(hook: Any, parser: Any) -> None:
    hook(parser=parser)  # pluggy takes hook arguments by keyword only


def group_title(cls: type, plugin: str) -> str:
    """The `--help` heading of a plugin's options: the first line of the dataclass' own docstring, else the
    plugin's name (a dataclass without a docstring gets its signature as one)."""
    doc = (cls.__doc__ or "").strip()
    return doc.splitlines()[0] if doc and not doc.startswith(f"{cls.__name__}(") else plugin


def each_plugin(pm: pluggy.PluginManager, hook_name: str) -> list[HookImpl]:
    """The implementations of a hook whose answer belongs to the plugin that gives it (a registration hook's
    things, `mikiwame_options`' dataclass), for the caller to call one plugin at a time in the order plugins
    were loaded, recording each answer under its plugin's name. Order means nothing there and no wrapper can
    wrap a per-plugin answer, so `tryfirst`, `trylast` and wrappers on these hooks are refused."""
    impls: list[HookImpl] = getattr(pm.hook, hook_name).get_hookimpls()
    _refuse_marks(impls, hook_name, ("tryfirst", "trylast", "hookwrapper", "wrapper"), "is called once per plugin")
    return impls


def chained(pm: pluggy.PluginManager, hook_name: str) -> list[HookImpl]:
    """The implementations of a hook whose calls form a chain, each seeing the previous one's answer
    (`mikiwame_transform_data`), in pluggy's call order: `tryfirst` ones first, then the last loaded first,
    `trylast` ones last. A wrapper cannot wrap a chain of calls, so it is refused."""
    impls: list[HookImpl] = getattr(pm.hook, hook_name).get_hookimpls()
    _refuse_marks(impls, hook_name, ("hookwrapper", "wrapper"), "chains its implementations")
    return impls[::-1]  # pluggy keeps them in the reverse of its call order


def _refuse_marks(impls: list[HookImpl], hook_name: str, refused: tuple[str, ...], why: str) -> None:
    for impl in impls:
        marks = [m for m in refused if getattr(impl, m)]
        if marks:
            raise PluginError(
                f"plugin {impl.plugin_name!r} marks its {hook_name} {' and '.join(marks)}, which that hook cannot "
                f"honour: it {why}",
                fix=f"drop {' and '.join(marks)} from that @hookimpl",
            )


def _short_name(module_path: str) -> str:
    return module_path.rsplit(".", 1)[-1]


def _wanted(names_env: str | None) -> set[str] | None:
    if not names_env:
        return None
    return {n.strip() for n in names_env.split(",") if n.strip()}


def _candidates() -> Iterable[tuple[str, Callable[[], Any]]]:
    for path in importlib.import_module(BUILT_IN_PACKAGE).BUILT_IN:
        yield _short_name(path), functools.partial(importlib.import_module, path)
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        yield ep.name, ep.load


def build_plugin_set(extra: Iterable[tuple[str, Any]] = ()) -> PluginSet:
    """Load plugins (a broken one is recorded, not fatal) and fill the registries.

    `extra` registers already-imported plugin objects by name (tests, embedding applications).
    """
    pm = pluggy.PluginManager("mikiwame")
    pm.add_hookspecs(hookspecs)
    wanted = _wanted(os.environ.get(PLUGINS_ENV))
    failures: list[PluginFailure] = []
    for name, load in [*_candidates(), *((n, lambda p=p: p) for n, p in extra)]:
        if wanted is not None and name not in wanted:
            continue
        try:
            pm.register(load(), name=name)
        except Exception as err:  # a third-party plugin may fail in any way; the others must still load
            last = traceback.extract_tb(err.__traceback__)[-1]
            failures.append(PluginFailure(name, f"{type(err).__name__}: {err} ({last.filename}:{last.lineno})"))
    plugin_set = PluginSet(
        pm,
        tasks=Registry[Task]("task", Task),
        models=Registry[ModelSource]("model", ModelSource),
        peft_methods=Registry[PeftMethod]("peft method", PeftMethod),
        analyzers=Registry[Analyzer]("analyzer", Analyzer),
        reporters=Registry[Reporter]("reporter", Reporter),
        countermeasures=Registry[Countermeasure]("countermeasure", Countermeasure),
        failures=failures,
    )
    for kind, registry in plugin_set.registries.items():
        for impl in each_plugin(pm, REGISTRATION_HOOKS[kind]):
            impl.function(register=registry.registrar(impl.plugin_name, lambda item: item.name))
    return plugin_set
