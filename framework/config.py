"""The one resolved configuration of a run: parsed from a recipe's command line, saved in the run directory,
and loadable again so that `--config RUN_DIR/config.json` reproduces the run."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

DEFAULT_MODEL = "cl-tohoku/bert-base-japanese-v3"
MIXED_PRECISION = ("no", "bf16", "fp16")


@dataclass
class RunConfig:
    recipe: str = "run"
    # task and data
    task: str = "headlines"
    data: str | None = None
    train_size: int | None = None
    class_weights: str = "none"
    strict: bool = False
    # model
    model: str = DEFAULT_MODEL
    no_fallback: bool = False
    max_length: int = 128
    tiny_layers: int = 2
    tiny_hidden: int = 128
    tiny_heads: int = 4
    tiny_vocab_size: int = 8000
    # PEFT
    peft: str = "lora"
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.1
    lora_targets: list[str] = field(default_factory=lambda: ["query", "value"])
    merge: bool = False
    # training
    epochs: int = 5
    batch_size: int = 16
    eval_batch_size: int = 64
    lr: float | None = None
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    grad_accum: int = 1
    max_grad_norm: float = 1.0
    mixed_precision: str = "no"
    patience: int = 2
    dropout: float | None = None
    seed: int = 42
    save_every: int | None = None
    eval_every: int | None = None
    track_train: bool = False
    keep_checkpoints: int = 1
    resume: str | None = None
    report_to: list[str] = field(default_factory=list)
    # output
    output_dir: str = "runs"
    analyze: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        positive = (
            *("epochs", "batch_size", "eval_batch_size", "grad_accum", "max_length", "keep_checkpoints", "lora_r"),
            *("tiny_layers", "tiny_hidden", "tiny_heads", "tiny_vocab_size"),
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        for name in ("lr", "weight_decay", "warmup_ratio", "max_grad_norm", "lora_dropout", "dropout"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ConfigError(
                    f"--{name.replace('_', '-')} must be a finite number, got {value}",
                    fix="give a number such as the default; NaN or infinity would make every weight NaN",
                )
        if self.mixed_precision not in MIXED_PRECISION:
            raise ConfigError(f"--mixed-precision {self.mixed_precision!r} is not one of {', '.join(MIXED_PRECISION)}")
        if self.train_size is not None and self.train_size < 2:
            raise ConfigError(f"--train-size must be at least 2, got {self.train_size}")
        if self.class_weights not in ("none", "balanced"):
            raise ConfigError(f"--class-weights {self.class_weights!r} is not one of none, balanced")
        if self.eval_every is not None and self.eval_every < 1:
            raise ConfigError(f"--eval-every must be at least 1, got {self.eval_every}")
        if self.save_every is not None and self.save_every < 1:
            raise ConfigError(f"--save-every must be at least 1, got {self.save_every}")
        if self.lr is not None and self.lr <= 0:
            raise ConfigError(f"--lr must be positive, got {self.lr}")
        if self.max_grad_norm <= 0:
            raise ConfigError(f"--max-grad-norm must be positive, got {self.max_grad_norm}")
        if not 0 <= self.warmup_ratio <= 1:
            raise ConfigError(f"--warmup-ratio must be between 0 and 1, got {self.warmup_ratio}")
        for name in ("dropout", "lora_dropout"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < 1:
                raise ConfigError(
                    f"--{name.replace('_', '-')} is a probability of dropping a unit: it must be in [0, 1), got {value}"
                )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: Path) -> None:
        """Without `resume`: a saved config reproduces the run from the start, and a config received with a
        run never points this machine at a checkpoint."""
        values = {k: v for k, v in self.to_dict().items() if k != "resume"}
        path.write_text(json.dumps(values, ensure_ascii=False, indent=2, allow_nan=False) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> RunConfig:
        """A saved config, each value checked against the field's type, so a hand-edited or received file
        fails here with its key named, not deep inside training."""
        try:
            values = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(
                f"config file {path} does not exist", fix="give the config.json of a run directory"
            ) from None
        except IsADirectoryError:
            raise ConfigError(f"config file {path} is a directory", fix="give the config.json inside it") from None
        except UnicodeDecodeError:
            raise ConfigError(f"config file {path} is not UTF-8 text", fix="give the config.json of a run") from None
        except json.JSONDecodeError as err:
            raise ConfigError(f"{path}:{err.lineno}: not valid JSON ({err.msg})") from None
        if not isinstance(values, dict):
            raise ConfigError(
                f"{path}: a config is a JSON object of option names, not a {type(values).__name__}",
                fix='write {"epochs": 3, ...} as a run\'s config.json has it',
            )
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(f"{path}: unknown config keys {', '.join(unknown)}")
        hints = typing.get_type_hints(cls)
        for key, value in values.items():
            if not _has_type(value, hints[key]):
                raise ConfigError(
                    f"{path}: {key!r} is {json.dumps(value, ensure_ascii=False)}, but must be {_type_name(hints[key])}",
                    fix=f"write it like its default: {json.dumps(getattr(cls(), key), ensure_ascii=False)}",
                )
        return cls(**values)


TYPE_NAMES = {int: "a whole number", float: "a number", str: "a string", bool: "true or false", type(None): "null"}


def _type_name(hint: Any) -> str:
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        return " or ".join(_type_name(arg) for arg in typing.get_args(hint))
    if typing.get_origin(hint) is list:
        return f"a list of {_type_name(typing.get_args(hint)[0]).removeprefix('a ')}s"
    return TYPE_NAMES.get(hint, "a JSON object")


def _has_type(value: Any, hint: Any) -> bool:
    """JSON values against the dataclass' hints: int, float (an int is fine), str, bool, None, list[str], dict."""
    if hint is Any:
        return True
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        return any(_has_type(value, arg) for arg in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if origin is list:
        return isinstance(value, list) and all(_has_type(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    return isinstance(value, hint)


def _csv_list(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def build_parser(description: str, defaults: RunConfig) -> argparse.ArgumentParser:
    """The options every recipe shares; plugins add their own through the `add_arguments` hook."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--config", type=Path, help="start from a saved config.json (a run's); other options override it")
    d = p.add_argument_group("task and data")
    d.add_argument("--task", default=defaults.task, help="task plugin name (see `mikiwame plugins`)")
    d.add_argument("--data", default=defaults.data, help="path to the task's data (task-specific)")
    d.add_argument(
        "--train-size", type=int, default=defaults.train_size, help="stratified, seeded subsample of the training split"
    )
    d.add_argument("--class-weights", default=defaults.class_weights, choices=["none", "balanced"])
    d.add_argument(
        "--strict",
        action="store_true",
        default=defaults.strict,
        help="treat data-check warnings (leakage across splits) as errors",
    )
    m = p.add_argument_group("model")
    m.add_argument("--model", default=defaults.model, help="hub id, local directory, or a model plugin name (tiny)")
    m.add_argument(
        "--no-fallback",
        action="store_true",
        default=defaults.no_fallback,
        help="fail instead of falling back to the tiny model when the hub is unreachable",
    )
    m.add_argument("--max-length", type=int, default=defaults.max_length)
    m.add_argument("--tiny-layers", type=int, default=defaults.tiny_layers)
    m.add_argument("--tiny-hidden", type=int, default=defaults.tiny_hidden)
    m.add_argument("--tiny-heads", type=int, default=defaults.tiny_heads)
    m.add_argument("--tiny-vocab-size", type=int, default=defaults.tiny_vocab_size)
    f = p.add_argument_group("parameter-efficient fine-tuning")
    f.add_argument("--peft", default=defaults.peft, help="PEFT method plugin name (lora, full, ...)")
    f.add_argument("--lora-r", type=int, default=defaults.lora_r)
    f.add_argument("--lora-alpha", type=int, default=defaults.lora_alpha)
    f.add_argument("--lora-dropout", type=float, default=defaults.lora_dropout)
    f.add_argument(
        "--lora-targets", type=_csv_list, default=defaults.lora_targets, help="comma-separated module name patterns"
    )
    f.add_argument(
        "--merge",
        action="store_true",
        default=defaults.merge,
        help="also export the adapter merged into a plain transformers model",
    )
    t = p.add_argument_group("training")
    t.add_argument("--epochs", type=int, default=defaults.epochs)
    t.add_argument("--batch-size", type=int, default=defaults.batch_size, help="per process")
    t.add_argument("--eval-batch-size", type=int, default=defaults.eval_batch_size)
    t.add_argument("--lr", type=float, default=defaults.lr, help="default: the PEFT method's own")
    t.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
    t.add_argument("--warmup-ratio", type=float, default=defaults.warmup_ratio)
    t.add_argument("--grad-accum", type=int, default=defaults.grad_accum)
    t.add_argument("--max-grad-norm", type=float, default=defaults.max_grad_norm)
    t.add_argument("--mixed-precision", default=defaults.mixed_precision, choices=list(MIXED_PRECISION))
    t.add_argument(
        "--patience",
        type=int,
        default=defaults.patience,
        help="early stopping: evaluations without a new best validation loss",
    )
    t.add_argument("--dropout", type=float, default=defaults.dropout, help="override the model's dropout")
    t.add_argument("--seed", type=int, default=defaults.seed)
    t.add_argument(
        "--save-every",
        type=int,
        default=defaults.save_every,
        help="checkpoint every N optimizer steps (default: each epoch)",
    )
    t.add_argument(
        "--eval-every",
        type=int,
        default=defaults.eval_every,
        help="also evaluate on validation every N optimizer steps (learning curves; early stopping stays per epoch)",
    )
    t.add_argument(
        "--track-train",
        action="store_true",
        default=defaults.track_train,
        help="predict the training set after each epoch (train_dynamics.json: which examples are learned late)",
    )
    t.add_argument("--keep-checkpoints", type=int, default=defaults.keep_checkpoints)
    t.add_argument("--resume", default=defaults.resume, help="checkpoint directory to continue from")
    t.add_argument(
        "--report-to", type=_csv_list, default=defaults.report_to, help="Accelerate trackers, e.g. tensorboard"
    )
    o = p.add_argument_group("output")
    o.add_argument("--output-dir", default=defaults.output_dir)
    o.add_argument("--analyze", type=_csv_list, default=defaults.analyze, help="comma-separated analyzer names")
    return p


def config_from_args(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None, recipe: str, plugin_dests: Sequence[str]
) -> RunConfig:
    """Defaults < saved config (--config) < options given on the command line."""
    args = parser.parse_args(argv)
    base = RunConfig.load(args.config) if args.config else RunConfig()
    given = {k: v for k, v in vars(args).items() if k != "config"}
    explicit = explicit_dests(parser, argv)
    values = base.to_dict()
    for dest, value in given.items():
        if dest in plugin_dests:
            if dest in explicit or dest not in values["options"]:
                values["options"][dest] = value
        elif args.config is None or dest in explicit:
            values[dest] = value
    values["recipe"] = recipe
    config = RunConfig(**values)
    config.validate()
    return config


def explicit_dests(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> set[str]:
    """Which options the user typed, found by re-parsing with every default suppressed."""
    probe = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    for action in parser._actions:
        if action.option_strings and action.dest != "help":
            kwargs: dict[str, Any] = {"dest": action.dest}
            if isinstance(action, argparse._StoreTrueAction):
                kwargs["action"] = "store_true"
            else:
                kwargs["nargs"] = action.nargs
            probe.add_argument(*action.option_strings, **kwargs)
    known, _ = probe.parse_known_args(argv)
    return set(vars(known))
