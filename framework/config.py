"""The one resolved configuration of a run: parsed from a recipe's command line, saved in the run directory,
and loadable again so that `--config RUN_DIR/config.json` reproduces the run."""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError, RunDirectoryError
from .findings import LANGUAGES, default_lang
from .options import check_types, has_type, option, type_name
from .runfiles import read_bytes, refuse_constant

CONFIG_LIMIT = 1024 * 1024  # a config is a few KB; a larger file is not one

DEFAULT_MODEL = "cl-tohoku/bert-base-japanese-v3"
MIXED_PRECISION = ("no", "bf16", "fp16")
# Ceilings far above any useful value and far below what exhausts memory before the first step: a typo such as
# an extra zero is refused in one message, not met as an allocation failure or a hang.
SIZE_LIMITS = {"max_length": 65_536, "batch_size": 65_536, "eval_batch_size": 65_536, "grad_accum": 65_536}
SEED_LIMIT = 2**32  # numpy's generators take seeds in [0, 2**32)


@dataclass
class RunConfig:
    """The core's options; plugins' own live in `options` (framework/options.py)."""

    recipe: str = "run"
    # task and data
    task: str = option("headlines", "task plugin name", group="task and data")
    data: str | None = option(None, "the task's data file or folder", group="task and data")
    train_size: int | None = option(None, "a seeded stratified subsample of the training split", group="task and data")
    class_weights: str = option("none", "loss weights per label", choices=("none", "balanced"), group="task and data")
    strict: bool = option(False, "data-check warnings (e.g. leakage) are errors", group="task and data")
    # model
    model: str = option(DEFAULT_MODEL, "hub id, directory or model plugin name", group="model")
    no_fallback: bool = option(False, "fail when the hub is unreachable (no offline model)", group="model")
    max_length: int = option(128, "tokens per text, the rest cut off", group="model")
    # PEFT
    peft: str = option("auto", "PEFT method; auto: the model's pick", group="parameter-efficient fine-tuning")
    merge: bool = option(
        False, "also save the adapter merged into a plain model", group="parameter-efficient fine-tuning"
    )
    # training
    epochs: int = option(5, "passes over the training split", group="training")
    batch_size: int = option(16, "per process", group="training")
    eval_batch_size: int = option(64, "per process, in evaluation", group="training")
    lr: float | None = option(None, "default: the PEFT method's own", group="training")
    weight_decay: float = option(0.01, "AdamW weight decay", group="training")
    warmup_ratio: float = option(0.1, "share of steps with a rising rate", group="training")
    grad_accum: int = option(1, "micro-batches per optimizer step", group="training")
    max_grad_norm: float = option(1.0, "gradient clipping", group="training")
    mixed_precision: str = option("no", "autocast precision", choices=MIXED_PRECISION, group="training")
    patience: int = option(
        2,
        "early stopping after N evals; 0: never",
        group="training",
    )
    restore_best: bool = option(False, "keep the best epoch even with --patience 0", group="training")
    dropout: float | None = option(None, "override the model's dropout", group="training")
    label_smoothing: float = option(0.0, "share of each target spread over all labels", group="training")
    seed: int = option(42, "seeds data order, init and sampling", group="training")
    data_seed: int | None = option(None, "seeds the split and --train-size (default: --seed)", group="training")
    save_every: int | None = option(None, "checkpoint every N steps (default: each epoch)", group="training")
    eval_every: int | None = option(None, "also evaluate every N steps (learning curves)", group="training")
    track_train: bool = option(False, "record training-set predictions each epoch", group="training")
    keep_checkpoints: int = option(1, "checkpoints kept on disk", group="training")
    resume: str | None = option(None, "checkpoint directory to continue from", group="training")
    report_to: list[str] = option([], "Accelerate trackers, e.g. tensorboard", group="training")
    # output
    output_dir: str = option("runs", "where run directories are written", group="output")
    name: str | None = option(
        None,
        "the run's name: its folder, shown in reports",
        group="output",
    )
    analyze: list[str] = option([], "comma-separated analyzer names", group="output")
    lang: str = option(default_lang(), "language of the findings and titles", choices=LANGUAGES, group="output")
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, **values: Any) -> RunConfig:
        """A config from keyword values, plugins' options among them (`RunConfig.of(epochs=3, my_option=2)`):
        what is not a core field goes into `options`."""
        known = {f.name for f in dataclasses.fields(cls)}
        options = {**values.pop("options", {}), **{k: values.pop(k) for k in list(values) if k not in known}}
        return cls(**values, options=options)

    @property
    def split_seed(self) -> int:
        """What draws the split (a corpus without its own) and the `--train-size` subsample: `--data-seed`, else
        `--seed`. Apart from the training seed so that re-runs over seeds (countermeasures) keep their data."""
        return self.seed if self.data_seed is None else self.data_seed

    def validate(self) -> None:
        for name in ("epochs", "batch_size", "eval_batch_size", "grad_accum", "max_length", "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        for name, limit in SIZE_LIMITS.items():
            if getattr(self, name) > limit:
                raise ConfigError(
                    f"--{name.replace('_', '-')} {getattr(self, name)} is more than {limit:,}",
                    fix=f"give a value such as the default ({getattr(RunConfig(), name)})",
                )
        if not 0 <= self.seed < SEED_LIMIT:
            raise ConfigError(f"--seed must be in [0, 2**32), got {self.seed}", fix="give a seed such as 42")
        if self.data_seed is not None and not 0 <= self.data_seed < SEED_LIMIT:
            raise ConfigError(
                f"--data-seed must be in [0, 2**32), got {self.data_seed}",
                fix="give a seed such as 42, or leave it out",
            )
        if self.patience < 0:
            raise ConfigError(
                f"--patience must be 0 (no early stopping) or more, got {self.patience}",
                fix="give the number of evaluations without a new best validation loss to wait, e.g. 2",
            )
        if self.weight_decay < 0:
            raise ConfigError(
                f"--weight-decay must be 0 or more, got {self.weight_decay}",
                fix="a negative decay pushes weights away from zero; use e.g. 0.01 or 0",
            )
        if self.name is not None:
            check_run_name(self.name)
        output = Path(self.output_dir)
        if output.exists() and not output.is_dir():
            raise ConfigError(
                f"--output-dir {self.output_dir} is a file, not a folder",
                fix="give a folder (it is created when missing), e.g. runs",
            )
        for name in ("lr", "weight_decay", "warmup_ratio", "max_grad_norm", "dropout"):
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
        check_probability("--dropout", self.dropout)
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(
                f"--label-smoothing is the share of a target spread over all labels: it must be in [0, 1), "
                f"got {self.label_smoothing}",
                fix="use 0.1, the value of Szegedy et al. 2016",
            )

    @property
    def restores_best(self) -> bool:
        """Early stopping restores the best epoch; without it (`--patience 0`) the model is kept as trained
        unless `--restore-best` asks for the best epoch: the untreated figure an over-fitting run needs."""
        return self.patience > 0 or self.restore_best

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: Path) -> None:
        """Without `resume`: a saved config reproduces the run from the start, and a config received with a
        run never points this machine at a checkpoint."""
        values = {k: v for k, v in self.to_dict().items() if k != "resume"}
        path.write_text(json.dumps(values, ensure_ascii=False, indent=2, allow_nan=False) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path, option_types: Mapping[str, Any] | None = None) -> RunConfig:
        """A saved config, each value checked against its type (the core's fields, and the plugins' options in
        `option_types`), so a hand-edited or received file fails here with its key named, not deep inside
        training. A key of a plugin's options found at the top level (where configs before plugins declared
        their options kept them, e.g. a model plugin's sizes) is moved into `options`."""
        return cls.from_values(_read_json_object(path), option_types, path)

    @classmethod
    def from_values(cls, values: Mapping[str, Any], option_types: Mapping[str, Any] | None, path: Path) -> RunConfig:
        """`load`'s checks on a config already read from `path` (a run's results hold it), so it is read once."""
        values = dict(values)
        if "resume" in values:
            raise ConfigError(
                f"{path}: the config holds 'resume', which a saved config never holds: a received config must not "
                "point this machine at a checkpoint",
                fix="delete the 'resume' key; to continue a run, give --resume CHECKPOINT on the command line",
            )
        known = {f.name for f in dataclasses.fields(cls)}
        option_types = option_types or {}
        moved = {k: values.pop(k) for k in list(values) if k not in known and k in option_types}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"{path}: unknown config keys {', '.join(unknown)}")
        hints = typing.get_type_hints(cls)
        for key, value in values.items():
            if not has_type(value, hints[key]):
                raise ConfigError(
                    f"{path}: {key!r} is {json.dumps(value, ensure_ascii=False)}, but must be {type_name(hints[key])}",
                    fix=f"write it like its default: {json.dumps(getattr(cls(), key), ensure_ascii=False)}",
                )
        values["options"] = {**moved, **values.get("options", {})}
        check_types(values["options"], option_types, f"{path}: options")
        config = cls(**values)
        try:
            config.validate()
        except ConfigError as err:
            fix = err.fix or "give the value a run's config.json has"
            raise ConfigError(err.what, where=str(path), fix=fix) from None
        return config


def _read_json_object(path: Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist", fix="give the config.json of a run directory")
    if path.is_dir():
        raise ConfigError(f"config file {path} is a directory", fix="give the config.json inside it")
    try:
        text = read_bytes(path, CONFIG_LIMIT).decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text", fix="give the config.json of a run") from None
    except RunDirectoryError as err:
        raise ConfigError(err.what, where=err.where, fix="give the config.json of a run") from None
    try:
        values = json.loads(text, parse_constant=refuse_constant)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}:{err.lineno}: not valid JSON ({err.msg})") from None
    except (ValueError, RecursionError) as err:
        raise ConfigError(f"{path}: not valid JSON ({err})", fix="write numbers as numbers") from None
    if not isinstance(values, dict):
        raise ConfigError(
            f"{path}: a config is a JSON object of option names, not a {type(values).__name__}",
            fix='write {"epochs": 3, ...} as a run\'s config.json has it',
        )
    return values


NAME_LIMIT = 100
# A name becomes one folder name: no separator, no parent or hidden folder (a leading dot is how a partial run
# hides), nothing a terminal or a shell would read as more than text.
NAME_REFUSED = ("/", "\\", "\x00")


def check_run_name(name: str) -> None:
    """`--name`: one visible folder name of at most NAME_LIMIT characters."""
    problem = None
    if not name.strip():
        problem = "is empty"
    elif len(name) > NAME_LIMIT:
        problem = f"has {len(name)} characters, more than {NAME_LIMIT}"
    elif any(c in name for c in NAME_REFUSED) or not name.isprintable():
        problem = "holds a path separator or a control character"
    elif name.startswith("."):
        problem = "starts with a dot (hidden, and how a partial run's folder is named)"
    if problem:
        raise ConfigError(
            f"{name!r} {problem}",
            where="--name",
            fix="give one folder name such as level2-lora (letters, digits, -, _; Japanese is fine)",
        )


def check_probability(flag: str, value: float | None) -> None:
    if value is not None and not 0 <= value < 1:
        raise ConfigError(f"{flag} is a probability of dropping a unit: it must be in [0, 1), got {value}")
