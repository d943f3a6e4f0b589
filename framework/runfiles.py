"""The one way a run directory's files are read back: regular files inside the run, of bounded size, and JSON
checked against a schema, so a damaged or hostile value is one message naming the file, the key and the fix.

A run directory may come from someone else (docs/reliability.md). Whatever reads it (`report`, `analyze`,
`predict`, `--resume`, a plugin's saved model) goes through `read_text`/`read_json` here instead of
`Path.read_text`: a FIFO in place of a file would block forever, a symlink could lead out of the run, a huge
file would fill memory, and a value of the wrong type or range would fail as a traceback deep in a reporter.

A schema is written with the type hints of `options.has_type` (`int`, `str | None`, `list[str]`,
`dict[str, float]`, `Any`) plus pieces for what hints cannot say: `Obj` (an object with named keys), `Between`
(a number in a range, as `Annotated[int, Between(0)]`, or a length), `Nullable` (an `Obj` or null), `AnyOf`
(one of several shapes), `AllOf` (every one of them); `Literal[...]` names the values allowed.
"""

from __future__ import annotations

import json
import math
import os
import stat
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from .errors import RunDirectoryError
from .options import type_name

MiB = 1024 * 1024
JSON_LIMIT = 64 * MiB  # analyses and models hold vocabularies and per-text rows; a run's JSON is a few MB


@dataclass(frozen=True)
class Between:
    """A number's allowed range, both ends included (None: open)."""

    minimum: float | None = None
    maximum: float | None = None

    def holds(self, value: float) -> bool:
        return (self.minimum is None or value >= self.minimum) and (self.maximum is None or value <= self.maximum)

    def describe(self) -> str:
        if self.maximum is None:
            return f"at least {self.minimum:g}"
        if self.minimum is None:
            return f"at most {self.maximum:g}"
        return f"between {self.minimum:g} and {self.maximum:g}"


@dataclass(frozen=True)
class Obj:
    """A JSON object: `required` keys must be there, `optional` ones may be; other keys are not checked
    (a newer mikiwame may add some)."""

    required: Mapping[str, Any] = field(default_factory=dict)
    optional: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Nullable:
    """A schema that may also be null (`Obj(...) | None` cannot be written)."""

    schema: Any


@dataclass(frozen=True)
class AnyOf:
    """One of several shapes (an analysis that found nothing writes a message instead of its tables)."""

    schemas: tuple[Any, ...]

    def __init__(self, *schemas: Any) -> None:
        object.__setattr__(self, "schemas", schemas)


@dataclass(frozen=True)
class AllOf:
    """Every one of several shapes (an example row that also carries its training history)."""

    schemas: tuple[Any, ...]

    def __init__(self, *schemas: Any) -> None:
        object.__setattr__(self, "schemas", schemas)


Count = Annotated[int, Between(0)]
Fraction = Annotated[float, Between(0, 1)]


def damaged(path: Path, what: str, *, where: str | None = None, fix: str | None = None) -> RunDirectoryError:
    return RunDirectoryError(
        f"{path.name} of this run is damaged: {what}",
        where=where or str(path),
        fix=fix or "restore the file from the original run directory, or re-run the training that wrote it",
    )


def read_bytes(path: Path, limit: int = JSON_LIMIT) -> bytes:
    """The bytes of a regular file of at most `limit` bytes. Opened without blocking, so a FIFO or a device
    in its place is refused instead of waiting forever for a writer."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise damaged(path, "the file is missing") from None
    except OSError as err:
        raise damaged(path, f"it cannot be opened ({err.strerror})") from None
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise damaged(path, "it is not a regular file (a FIFO, device or folder in its place)")
        if info.st_size > limit:
            raise damaged(path, f"{info.st_size:,} bytes, more than the {limit:,} a run writes there")
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise damaged(path, f"more than the {limit:,} bytes a run writes there")
    return data


def read_text(path: Path, limit: int = JSON_LIMIT) -> str:
    try:
        return read_bytes(path, limit).decode("utf-8")
    except UnicodeDecodeError as err:
        raise damaged(path, f"not UTF-8 ({err.reason} at byte {err.start})") from None


def refuse_constant(name: str) -> float:
    """`json.loads(parse_constant=...)`: NaN and Infinity are Python's extension, not JSON."""
    raise ValueError(f"{name} is not a JSON number")


def parse_json(text: str, path: Path, line: int | None = None) -> Any:
    """Strict JSON: NaN and Infinity (which Python writes and other readers reject) are refused too."""
    where = f"{path}:{line}" if line is not None else None
    try:
        return json.loads(text, parse_constant=refuse_constant)
    except json.JSONDecodeError as err:
        what = f"line {line} is not valid JSON" if line else "not valid JSON"
        raise damaged(path, f"{what} ({err.msg})", where=f"{path}:{line or err.lineno}") from None
    except ValueError as err:
        raise damaged(path, str(err), where=where) from None
    except RecursionError:
        raise damaged(path, "nested too deeply", where=where) from None


def read_json(path: Path, schema: Any = Any, *, limit: int = JSON_LIMIT) -> Any:
    """A run's JSON file, checked against `schema` (an object unless the schema says otherwise)."""
    value = parse_json(read_text(path, limit), Path(path))
    check(value, dict if schema is Any else schema, Path(path))
    return value


def read_jsonl(path: Path, schema: Any = Any, *, limit: int = JSON_LIMIT * 4) -> list[Any]:
    """One JSON value per line (split on newlines only: U+2028 inside a string is not a line end)."""
    path = Path(path)
    rows = []
    for number, line in enumerate(read_text(path, limit).split("\n"), start=1):
        if line.strip():
            row = parse_json(line, path, number)
            check(row, schema, path, f"{path}:{number}")
            rows.append(row)
    return rows


def check(value: Any, schema: Any, path: Path, where: str | None = None, fix: str | None = None) -> None:
    """Refuse `value` with one message naming the file and the key path of the first value that does not fit
    (`fix`: how to make the file again, where restoring it is not the only way)."""
    found = mismatch(value, schema, "")
    if found is not None:
        key, must, bad = found
        shown = "missing" if bad is MISSING else json.dumps(bad, ensure_ascii=False)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise damaged(path, f"{key or 'the whole file'} is {shown}, but must be {must}", where=where, fix=fix)


MISSING = object()


def mismatch(value: Any, schema: Any, key: str) -> tuple[str, str, Any] | None:
    """(key path, what it must be, the value found) of the first value that does not fit `schema`, or None."""
    if schema is Any:
        return None
    if isinstance(schema, Nullable):
        return None if value is None else mismatch(value, schema.schema, key)
    if isinstance(schema, AnyOf):
        tried = [mismatch(value, inner, key) for inner in schema.schemas]
        misses = [f for f in tried if f is not None]
        # the shape the value was meant to have names the key at fault: one with a wrong value rather than a missing
        # key, the deepest
        return None if len(misses) < len(tried) else max(misses, key=lambda f: (f[2] is not MISSING, len(f[0])))
    if isinstance(schema, AllOf):
        return next((f for f in (mismatch(value, inner, key) for inner in schema.schemas) if f is not None), None)
    if isinstance(schema, Obj):
        if not isinstance(value, dict):
            return key, "a JSON object", value
        for name in schema.required:
            if name not in value:
                return _join(key, name), "present", MISSING
        for name, inner in {**schema.required, **schema.optional}.items():
            if name in value and (found := mismatch(value[name], inner, _join(key, name))):
                return found
        return None
    origin, args = typing.get_origin(schema), typing.get_args(schema)
    if origin is Literal:
        return None if value in args and not isinstance(value, bool) else (key, _describe(schema), value)
    if origin is Annotated:
        found = mismatch(value, args[0], key)
        if found is None and isinstance(value, int | float) and not args[1].holds(value):
            return key, args[1].describe(), value
        if found is None and isinstance(value, list | dict) and not args[1].holds(len(value)):
            return key, f"{_describe(args[0])} of {args[1].describe()} entries", value
        return found
    if origin in (types.UnionType, typing.Union):
        if any(mismatch(value, arg, key) is None for arg in args):
            return None
        return key, " or ".join(_describe(arg) for arg in args), value
    if origin is list:
        if not isinstance(value, list):
            return key, _describe(schema), value
        for i, item in enumerate(value):
            if found := mismatch(item, args[0], f"{key}[{i}]"):
                return found
        return None
    if origin is dict:
        if not isinstance(value, dict):
            return key, "a JSON object", value
        for name, item in value.items():
            if found := mismatch(item, args[1], _join(key, name)):
                return found
        return None
    if schema is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        return None if ok else (key, "a finite number", value)
    if schema is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else (key, "a whole number", value)
    if schema is bool:
        return None if isinstance(value, bool) else (key, "true or false", value)
    if schema is type(None):
        return None if value is None else (key, "null", value)
    return None if isinstance(value, schema) else (key, _describe(schema), value)


def _join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name


def _describe(schema: Any) -> str:
    if isinstance(schema, AnyOf | AllOf):
        return _describe(schema.schemas[0])
    if isinstance(schema, Obj) or typing.get_origin(schema) is dict:
        return "a JSON object"
    if isinstance(schema, Nullable):
        return f"{_describe(schema.schema)} or null"
    if typing.get_origin(schema) is Annotated:
        return f"{_describe(typing.get_args(schema)[0])} {typing.get_args(schema)[1].describe()}"
    if typing.get_origin(schema) is Literal:
        return " or ".join(json.dumps(v, ensure_ascii=False) for v in typing.get_args(schema))
    if typing.get_origin(schema) is list:
        return f"a list of {_describe(typing.get_args(schema)[0]).removeprefix('a ')}s"
    return type_name(schema)


REMOTE_CODE_KEYS = frozenset({"auto_map", "custom_pipelines", "trust_remote_code", "use_kernels", "kernel_config"})
ATTENTION_KEYS = frozenset({"_attn_implementation", "attn_implementation"})
LOCAL_ATTENTION = (None, "eager", "sdpa")


def refuse_remote_model_config(model_dir: Path) -> None:
    """A received model's config.json through an allow-list before transformers reads it: no remote code
    (`auto_map`, `trust_remote_code`, `custom_pipelines`), no kernel settings and no attention implementation
    other than eager or sdpa (a hub kernel's name there makes transformers fetch and run it). A config mikiwame
    saved never holds them; one that does is refused in one message, nothing fetched."""
    path = Path(model_dir) / "config.json"
    if not (path.exists() or path.is_symlink()):  # a FIFO or a link out is read_json's to refuse
        return
    found = sorted(_unsafe_keys(read_json(path), ""))
    if found:
        raise RunDirectoryError(
            f"the model config holds {', '.join(found)}, which would load code or kernels from outside the run",
            where=str(path),
            fix="use a model directory you made or checked; a saved run's model config never holds these keys",
        )


def _unsafe_keys(settings: Any, prefix: str) -> list[str]:
    """Key paths of remote-code, kernel and attention settings at any depth (composite models nest configs)."""
    if not isinstance(settings, dict):
        return []
    found = []
    for key, value in settings.items():
        name = _join(prefix, str(key))
        if key in REMOTE_CODE_KEYS or (key in ATTENTION_KEYS and value not in LOCAL_ATTENTION):
            found.append(name)
        found += _unsafe_keys(value, name)
    return found
