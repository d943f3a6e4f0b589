"""`--labels`: the names and the order of any task's labels, e.g. JRTE's `neutral` shown as the course's
`normal`, negative first: `--labels negative,neutral=normal,positive`.

Tasks sort their labels so ids never depend on file order; this option gives another order (the order of the
model's outputs, every table, report and figure) and other names, without a renamed copy of the data. The
run records the option in config.json, so `--config` reproduces the run, and the new names in every file.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from mikiwame.framework import hookimpl
from mikiwame.framework.config import RunConfig
from mikiwame.framework.errors import ConfigError
from mikiwame.framework.options import option, read_options
from mikiwame.framework.task import TaskData

FLAG = "--labels"


def parse_label_names(value: str, labels: list[str]) -> dict[str, str]:
    """Task label -> shown name, in the order given. Every task label must be listed once, and no two may end
    with the same name; else one error naming the task's labels."""
    pairs = [part.split("=", 1) for part in value.split(",") if part.strip()]
    names = {(old := p[0].strip()): (p[1].strip() if len(p) == 2 else old) for p in pairs}
    listed = [p[0].strip() for p in pairs]
    problems = []
    if unknown := [old for old in listed if old not in labels]:
        problems.append(f"not labels of the task: {', '.join(unknown)}")
    if repeated := sorted({old for old in listed if listed.count(old) > 1}):
        problems.append(f"listed more than once: {', '.join(repeated)}")
    if missing := [label for label in labels if label not in names]:
        problems.append(f"not listed: {', '.join(missing)}")
    if empty := [old for old, new in names.items() if not new]:
        problems.append(f"no new name after '=': {', '.join(empty)}")
    new_names = list(names.values())
    if clashes := sorted({new for new in new_names if new_names.count(new) > 1}):
        problems.append(f"two labels would be named {', '.join(clashes)}")
    if problems:
        raise ConfigError(
            f"{value!r} does not fit the task's labels ({'; '.join(problems)}). Task labels: {', '.join(labels)}",
            where=FLAG,
            fix=f"list every task label once, in the order wanted, each NAME or NAME=NEW, e.g. {FLAG} "
            + ",".join(labels),
        )
    return names


@dataclass
class LabelOptions:
    """label names and order (any task)"""

    label_names: str | None = option(None, "every label in order, each NAME or NAME=NEW", flag="--labels")


@hookimpl
def mikiwame_options():
    return LabelOptions


@hookimpl(tryfirst=True)  # the labels' names are set before any other data step reads them
def mikiwame_transform_data(config: RunConfig, data: TaskData) -> TaskData | None:
    value = read_options(LabelOptions, config.options).label_names
    if not value:
        return None
    names = parse_label_names(value, data.labels)
    examples = [replace(e, label=names[e.label]) for e in data.examples]
    return TaskData(data.name, examples, data.source, list(names.values()))
