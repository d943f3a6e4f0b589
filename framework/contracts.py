"""The contract check a registration goes through: a plugin's object has every member its kind's Protocol
declares, each of the right shape, so a mistake is one message at start-up naming the plugin, the member and
the fix, not an AttributeError in the middle of a run.

A kind's Protocol (`PeftMethod`, `Analyzer`, ...) declares three sorts of member: attributes without a default
(`name: str`) and methods (`def apply(...)`), which every object must have; and optional members, which have a
default in the Protocol's body (`needs_gradients: bool = False`). An object gets the defaults by subclassing the
Protocol (`class MyAnalyzer(Analyzer)`), or declares the member itself; the framework then reads every member
as a plain attribute.
"""

from __future__ import annotations

import inspect
import typing
from dataclasses import dataclass
from typing import Any

from .errors import PluginError

_TYPING_NAMES = {"_is_protocol", "_is_runtime_protocol"}


@dataclass(frozen=True)
class Member:
    """One member of a contract: `default` is the Protocol's default (`required` when there is none); `kind` is
    a plain class the value must be an instance of, when the annotation names one; `parameters` the number of
    arguments a method takes after `self` (None: not a method)."""

    name: str
    required: bool
    default: Any = None
    kind: type | None = None
    parameters: int | None = None


def members(contract: type) -> list[Member]:
    """Every member `contract` (a Protocol, with its Protocol bases) declares, in declaration order."""
    found: dict[str, Member] = {}
    for base in reversed(contract.__mro__):
        if not getattr(base, "_is_protocol", False) or base is typing.Protocol:
            continue
        hints = typing.get_type_hints(base) if base.__dict__.get("__annotations__") else {}
        for name in [*base.__dict__.get("__annotations__", {}), *base.__dict__]:
            if name.startswith("_") or name in _TYPING_NAMES:
                continue
            value = base.__dict__.get(name, inspect.Parameter.empty)
            if inspect.isfunction(value):
                arity = len(inspect.signature(value).parameters) - 1
                found[name] = Member(name, required=True, parameters=arity)
            else:
                hint, missing = hints.get(name), value is inspect.Parameter.empty
                kind = hint if isinstance(hint, type) else None
                found[name] = Member(name, required=missing, default=None if missing else value, kind=kind)
    return list(found.values())


def check_contract(item: object, contract: type, kind: str, plugin: str) -> None:
    """Refuse `item` (registered by `plugin` as a `kind`) when a member of `contract` is missing or has the
    wrong shape: a value of the wrong type, a method that is not callable or cannot take its arguments."""
    for member in members(contract):
        problem = _problem(item, member)
        if problem is None:
            continue
        label = getattr(item, "name", type(item).__name__)
        declared = f"{contract.__module__.replace('mikiwame.', '')}.{contract.__qualname__}"
        fix = (
            f"declare `{member.name}` on {type(item).__name__} as {declared} describes it"
            if member.required
            else f"subclass {declared} to inherit `{member.name} = {member.default!r}`, or declare it"
        )
        raise PluginError(f"plugin {plugin!r} registered {kind} {label!r}, whose `{member.name}` {problem}", fix=fix)


def _problem(item: object, member: Member) -> str | None:
    if not hasattr(item, member.name):
        return "is missing"
    value = getattr(item, member.name)
    if member.parameters is not None:
        if not callable(value):
            return f"is {type(value).__name__}, not a method"
        try:
            inspect.signature(value).bind(*[None] * member.parameters)
        except TypeError:
            return f"cannot take its {member.parameters} argument(s): it is {member.name}{inspect.signature(value)}"
        except ValueError:  # a builtin without a signature: trust it
            return None
        return None
    if member.kind is not None and not isinstance(value, member.kind):
        return f"is {value!r}, not a {member.kind.__name__}"
    if not member.required and member.default is None and value is not None and not callable(value):
        return f"is {value!r}, neither None nor a method"
    return None
