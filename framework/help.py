"""`--help` of a recipe that fits on a screen: the core's options and those of the plugins the command line
selects (its task, model, PEFT method, analyzers and their countermeasures), with one line saying how to see the
rest. Only the help is narrowed: every option of every plugin is still accepted.

Which plugins are selected is read from what the command line says (or `--config`'s file, or the recipe's
defaults), so `--task csv --help` shows the csv task's options. A plugin's options are shown when it registered
a selected thing, when its options dataclass names a selected thing in `SHOWN_WITH` (for options that serve
another plugin's things, e.g. word vectors for `--model tiny`), when it registers nothing and names nothing
(options for any run), or when one of its options was typed.
"""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .errors import ConfigError
from .models import model_source
from .options import CommandLine

HELP_FLAGS = ("-h", "--help")


class CompactHelpFormatter(argparse.HelpFormatter):
    """argparse's layout with the help column further right, so that most options take one line."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=26)


def selected_names(plugins: Any, values: Mapping[str, Any]) -> set[str]:
    """The names of the things a run with these core option values uses: its task, model source, PEFT method
    (none for `auto`, which the model decides when it is loaded), analyzers, and the countermeasures of those
    analyzers."""
    names = {values["task"], values["peft"], *values["analyze"]}
    source = model_source(plugins, values["model"])
    names |= {entry.name for entry in plugins.models if entry.item is source}
    names |= {entry.name for entry in plugins.countermeasures if entry.item.analyzer in names}
    return names


def shown_plugins(plugins: Any, selected: set[str], typed_by: Iterable[str]) -> set[str]:
    """Plugins whose options `--help` shows for the `selected` names; `typed_by`: plugins an option of which
    was typed."""
    shown = set(typed_by)
    registered = plugins.registered_by()
    for name, cls in plugins.option_classes():
        things = {thing for kind in registered.get(name, {}).values() for thing in kind}
        with_ = set(getattr(cls, "SHOWN_WITH", ()))
        if with_ & selected or not (things or with_):  # a plugin that registered a selected thing: below
            shown.add(name)
    for name, kinds in registered.items():
        if any(set(things) & selected for things in kinds.values()):
            shown.add(name)
    return shown


def narrow_help(command_line: CommandLine, shown: set[str]) -> int:
    """Hide, in `--help` only, the options owned by plugins not in `shown`; returns how many were hidden."""
    hidden = 0
    for action in command_line.argparse_parser._actions:
        owner = command_line.owners.get(action.dest)
        if owner is not None and owner not in shown and action.help is not argparse.SUPPRESS:
            action.help = argparse.SUPPRESS
            hidden += 1
    return hidden


def plugin_help(plugins: Any, name: str) -> str:
    """What `mikiwame plugins NAME` prints: the plugin called `name` (or the one that registers the thing called
    `name`), what it registers, and its options as `--help` shows them."""
    registered = plugins.registered_by()
    owner_of = {thing: plugin for plugin, kinds in registered.items() for things in kinds.values() for thing in things}
    owner = name if name in registered else owner_of.get(name)
    if owner is None:
        close = difflib.get_close_matches(name, [*registered, *owner_of], n=1)
        raise ConfigError(
            f"no plugin, and nothing a plugin registers, is called {name!r}"
            + (f" (did you mean {close[0]!r}?)" if close else ""),
            where="mikiwame plugins NAME",
            fix="`mikiwame plugins` lists every plugin and what it registers",
        )
    parser = argparse.ArgumentParser(prog=owner, usage=argparse.SUPPRESS, add_help=False)
    parser.formatter_class = CompactHelpFormatter
    command_line = CommandLine(parser)
    plugins.add_options(command_line)
    narrow_help(command_line, {owner})
    things = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in sorted(registered[owner].items()))
    heading = f"plugin {owner}" + (f" registers {things}" if things else " registers nothing (hooks only)")
    return f"{heading}\n\n{parser.format_help().strip() or '(no options)'}\n"


class SelectionHelp(argparse.Action):
    """`-h/--help`: prints the help narrowed by `values_of(typed)` (the core values the options typed
    select) and exits, as argparse's own help does."""

    def __init__(
        self,
        option_strings: list[str],
        dest: str,
        command_line: CommandLine,
        plugins: Any,
        values_of: Callable[[Mapping[str, Any]], Mapping[str, Any]],
        **kwargs: Any,
    ) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help="show this help and exit")
        self.command_line, self.plugins, self.values_of = command_line, plugins, values_of

    def __call__(self, parser: argparse.ArgumentParser, namespace: Any, values: Any, option: Any = None) -> None:
        argv = [arg for arg in self.command_line.argv if arg not in HELP_FLAGS]
        typed = vars(parser.parse_known_args(argv)[0])
        typed_by = {self.command_line.owners[dest] for dest in typed if dest in self.command_line.owners}
        selected = selected_names(self.plugins, self.values_of(typed))
        hidden = narrow_help(self.command_line, shown_plugins(self.plugins, selected, typed_by))
        if hidden:
            parser.epilog = f"{hidden} more plugin options are accepted: `mikiwame plugins NAME` shows them."
        parser.print_help()
        parser.exit()
