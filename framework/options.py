"""Options as typed dataclasses, and the one command line every recipe and `mikiwame analyze` builds from them.

The core's options are `RunConfig`'s fields; a plugin declares its own as a dataclass returned from
`mikiwame_options`. Each field becomes `--field-name` (its type, default and `option(help=...)` say how), its
value is saved in the run's config.json (`options`, by field name) and read back typed with
`read_options(Cls, config.options)`. A plugin that needs an argparse feature no dataclass expresses (`count`,
`store_const`, ...) still adds it through `mikiwame_add_arguments`.

Which options the user typed (so `--config` values are overridden only by those) is found with a sentinel:
every default given to argparse is SUPPRESS, the real one recorded beside it, so a parse holds exactly what was
typed whatever the kind of action.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from .errors import ConfigError

T = TypeVar("T")
_UNSET = object()


def option(
    default: Any = None,
    help: str = "",
    *,
    choices: Sequence[str] | None = None,
    group: str | None = None,
    flag: str | None = None,
) -> Any:
    """A dataclass field that is also a command-line option `--field-name`, parsed as the field's type (lists
    comma-separated); `group` names its `--help` heading when it differs from the plugin's. `flag` renames the
    option (`--csv-encoding` for the field `encoding`): `--field-name` is then still accepted, hidden from
    `--help`, with a one-line note, and the config key stays the field's name, so saved runs read as before."""
    metadata = {"help": help, "choices": choices, "group": group, "flag": flag}
    if isinstance(default, list | dict):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def csv_list(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def flag_of(name: str) -> str:
    return "--" + name.replace("_", "-")


def flag_of_field(field: dataclasses.Field) -> str:
    """The option a field is typed as: its `flag` when renamed, else `--field-name`."""
    return field.metadata.get("flag") or flag_of(field.name)


def field_types(cls: type) -> dict[str, Any]:
    """Field name -> resolved type hint of an options dataclass (its fields only, not its class variables)."""
    hints = typing.get_type_hints(cls)
    return {field.name: hints[field.name] for field in dataclasses.fields(cls)}


def _bare(hint: Any) -> Any:
    """`int | None` -> int: the type an option's text is parsed as."""
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0] if len(args) == 1 else str
    return hint


def _argument(field: dataclasses.Field, hint: Any, default: Any) -> tuple[list[str], dict[str, Any]]:
    meta = field.metadata
    kwargs: dict[str, Any] = {"dest": field.name, "default": default, "help": meta.get("help") or None}
    bare = _bare(hint)
    if bare is bool:
        kwargs["action"] = argparse.BooleanOptionalAction if default else "store_true"
    elif typing.get_origin(bare) is list:
        item = typing.get_args(bare)[0]
        kwargs["type"] = csv_list if item is str else (lambda text, item=item: [item(v) for v in csv_list(text)])
    elif bare in (int, float, str):
        kwargs["type"] = bare
    if meta.get("choices"):
        kwargs["choices"] = list(meta["choices"])
    elif bare is not bool:
        kwargs["metavar"] = metavar_of(field.name, bare)
    return [flag_of_field(field)], kwargs


def metavar_of(name: str, bare: Any) -> str:
    """A short placeholder (`--batch-size N`, `--output-dir DIR`), so that most options fit one `--help` line."""
    if bare is int:
        return "N"
    if bare is float:
        return "X"
    if typing.get_origin(bare) is list:
        return "A,B"
    return name.rsplit("_", 1)[-1].upper()


def add_options(
    parser: argparse.ArgumentParser, cls: type, title: str, defaults: Mapping[str, Any] | None = None
) -> None:
    """One argument group of `cls`'s fields; `defaults` overrides the fields' own (a recipe's choices)."""
    hints = field_types(cls)
    groups: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        if field.metadata.get("help") is None:
            continue  # not a command-line option (e.g. RunConfig.recipe)
        default = (defaults or {}).get(field.name, _UNSET)
        if default is _UNSET:
            default = field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default
        name = field.metadata.get("group") or title
        if name not in groups:
            groups[name] = parser.add_argument_group(name)
        flags, kwargs = _argument(field, hints[field.name], default)
        action = groups[name].add_argument(*flags, **kwargs)
        if field.metadata.get("flag"):
            add_alias(groups[name], flag_of(field.name), action)


class RenamedOption(argparse.Action):
    """An option's old name: parsed as the new one (same type, arity and choices), hidden from `--help`, and
    saying once per use that it was renamed, so that command lines and scripts written before keep working."""

    def __init__(self, option_strings: list[str], dest: str, target: argparse.Action, **kwargs: Any) -> None:
        shape: dict[str, Any] = {"nargs": target.nargs, "const": target.const, "type": target.type}
        super().__init__(
            option_strings, dest, **shape, choices=target.choices, default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )
        self.target = target

    def __call__(self, parser: argparse.ArgumentParser, namespace: Any, values: Any, option: Any = None) -> None:
        print(f"note: {option} is now {self.target.option_strings[0]} (the old name still works)", file=sys.stderr)
        self.target(parser, namespace, values, self.target.option_strings[0])


def add_alias(parser: Any, old_flag: str, action: argparse.Action) -> None:
    """Accept `old_flag` as `action`'s former name (see `RenamedOption`); for `mikiwame_add_arguments`
    plugins that rename an option, as typed options do with `option(flag=...)`."""
    container = getattr(parser, "container", parser)  # a recording parser: beside its records, not in them
    container.add_argument(old_flag, action=RenamedOption, target=action, dest=action.dest)


def read_options(cls: type[T], values: Mapping[str, Any]) -> T:
    """A typed instance from a config's `options` (its defaults for the fields not there), checked."""
    # cls is a dataclass type; typeshed's fields() wants an instance-or-type it cannot infer from type[T].
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    instance = cls(**{k: v for k, v in values.items() if k in {f.name for f in fields}})
    for field in fields:
        choices, value = field.metadata.get("choices"), getattr(instance, field.name)
        if choices and value not in choices:
            raise ConfigError(f"{flag_of_field(field)} {value!r} is not one of {', '.join(map(str, choices))}")
    validate = getattr(instance, "validate", None)
    if validate is not None:
        validate()
    return instance


def check_types(values: Mapping[str, Any], hints: Mapping[str, Any], where: str) -> None:
    """JSON values against option types, so a hand-edited config fails naming its key, not deep in training."""
    for key, value in values.items():
        if key in hints and not has_type(value, hints[key]):
            raise ConfigError(
                f"{where}: {key!r} is {value!r}, but must be {type_name(hints[key])}",
                fix="write it as a run's config.json has it",
            )


TYPE_NAMES = {int: "a whole number", float: "a number", str: "a string", bool: "true or false", type(None): "null"}


def type_name(hint: Any) -> str:
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        return " or ".join(type_name(arg) for arg in typing.get_args(hint))
    if typing.get_origin(hint) is list:
        return f"a list of {type_name(typing.get_args(hint)[0]).removeprefix('a ')}s"
    return TYPE_NAMES.get(hint, "a JSON object")


def has_type(value: Any, hint: Any) -> bool:
    """JSON values against the dataclass' hints: int, float (an int is fine), str, bool, None, lists, dict."""
    if hint is Any:
        return True
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        return any(has_type(value, arg) for arg in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if origin is list:
        return isinstance(value, list) and all(has_type(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    return isinstance(value, hint)


class _Recording:
    """Gives every argument argparse.SUPPRESS as its default and records the real one, with the help text
    saying it (so `--help` still shows defaults). Wraps the parser and its groups alike."""

    def __init__(self, container: Any, defaults: dict[str, Any]):
        self.container = container
        self._defaults = defaults

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        probe = argparse.ArgumentParser(add_help=False).add_argument(*args, **kwargs)
        if probe.dest in self._defaults:
            raise ConfigError(f"option {'/'.join(probe.option_strings)} is declared twice (by two plugins?)")
        self._defaults[probe.dest] = probe.default
        kwargs["default"] = argparse.SUPPRESS
        if kwargs.get("help") is not argparse.SUPPRESS and probe.default not in (None, False, []):
            shown = ",".join(map(str, probe.default)) if isinstance(probe.default, list) else probe.default
            kwargs["help"] = f"{kwargs.get('help') or ''} (default: {str(shown).replace('%', '%%')})".lstrip()
        return self.container.add_argument(*args, **kwargs)

    def add_argument_group(self, *args: Any, **kwargs: Any) -> _Recording:
        return _Recording(self.container.add_argument_group(*args, **kwargs), self._defaults)

    def add_mutually_exclusive_group(self, **kwargs: Any) -> _Recording:
        return _Recording(self.container.add_mutually_exclusive_group(**kwargs), self._defaults)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.container, name)


@dataclass
class Parsed:
    values: dict[str, Any]  # every option, typed or defaulted
    explicit: set[str]  # the options typed on the command line


class CommandLine:
    """An argparse parser whose parse also says which options were typed; `parser` is what hooks and
    `add_options` add to (it records defaults), `argparse_parser` the plain one underneath."""

    def __init__(self, argparse_parser: argparse.ArgumentParser):
        self.argparse_parser = argparse_parser
        self.defaults: dict[str, Any] = {}
        self.owners: dict[str, str] = {}  # option name -> the plugin that added it (what `--help` narrows by)
        self.argv: list[str] = []  # what the last parse read (a help action reads it whole)
        self.parser: Any = _Recording(argparse_parser, self.defaults)

    def dests_added_by(self, add: Callable[[Any], object], owner: str | None = None) -> list[str]:
        """Call `add(parser)` and return the option names it added (a plugin hook, a recipe's own group),
        recorded as `owner`'s when given."""
        before = set(self.defaults)
        add(self.parser)
        added = [d for d in self.defaults if d not in before]
        if owner is not None:
            self.owners.update(dict.fromkeys(added, owner))
        return added

    def parse(self, argv: Iterable[str] | None) -> Parsed:
        self.argv = sys.argv[1:] if argv is None else list(argv)
        typed = vars(self.argparse_parser.parse_args(self.argv))
        return Parsed({**self.defaults, **typed}, set(typed))
