"""The countermeasure plugin kind: a cure for one kind of finding, and how it changes a run.

A countermeasure reads one analyzer's saved result (`analyses/NAME.json` of a finished run) and says which of
its findings it addresses (`targets`); for each, `apply` returns the run's own configuration changed the way
the cure needs: a core option (`--weight-decay`, `--restore-best`), a plugin's option that turns on a data
transform (`mikiwame_transform_data`) or a training objective (`mikiwame_training_loss`). Every change is a
configuration value, so a treated run's config.json reproduces it like any run's. `mikiwame countermeasures
RUN_DIR` (framework/countermeasures.py) runs each one against the untreated run, paired by seed.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .config import RunConfig
from .registry import Registry
from .results import RunResults

ANALYSIS_FIGURE = "analysis figure"  # a target read from the re-runs' own analyses/ANALYZER.json (Target.detail)


@dataclass(frozen=True)
class Target:
    """One finding a countermeasure addresses. `finding` names its kind (`shortcut`, `over-fitting`, ...);
    `detail` is what the cure and its measurement need (a shortcut's `unit` and `label`, ...); `metric` is the
    target figure `framework/countermeasures.py` measures before and after (see TARGET_METRICS there); with
    ANALYSIS_FIGURE the re-runs run the analyzer, and `detail["figure"]` is the path of keys to the figure in
    its result, `detail["lower"]` whether lower is better."""

    analyzer: str
    finding: str
    metric: str
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """A folder-safe name of the finding: its kind and, for a unit or entity, the unit's text."""
        subject = self.detail.get("unit") or self.detail.get("label") or ""
        text = f"{self.finding}-{subject}" if subject else self.finding
        return re.sub(r"[^\w.-]+", "_", text).strip("_")

    def to_dict(self) -> dict[str, Any]:
        return {"analyzer": self.analyzer, "finding": self.finding, **self.detail}


class Countermeasure(Protocol):
    """`name` as the user names it (`--only NAME`), a one-line `description`, `analyzer`: whose saved result
    `targets` reads; `sources`: the papers it follows (author, year, venue or arXiv id)."""

    name: str
    description: str
    analyzer: str
    sources: tuple[str, ...]

    def targets(self, analysis: dict[str, Any], results: RunResults) -> list[Target]:
        """The findings of `analysis` (the analyzer's saved result) this countermeasure addresses, [] if none;
        `results` is the rest of the run (its config, metrics, data checks) where the predicate needs them."""
        ...

    def apply(self, config: RunConfig, target: Target) -> RunConfig:
        """A copy of `config` that runs with the cure; `config` itself is left unchanged."""
        ...


def with_values(config: RunConfig, **values: Any) -> RunConfig:
    """A copy of `config` with core fields and plugin options changed (a name that is not a core field is an
    option), as `RunConfig.of` reads them: what most `apply` methods are."""
    core = {f.name for f in dataclasses.fields(RunConfig)}
    options = {**config.options, **{k: v for k, v in values.items() if k not in core}}
    return dataclasses.replace(config, **{k: v for k, v in values.items() if k in core}, options=options)


@dataclass(frozen=True)
class OptionValuesCure:
    """The common shape of a countermeasure that is fixed option values (`values`: name, value pairs); a
    subclass says which findings it addresses (`targets`)."""

    name: str
    description: str
    values: tuple[tuple[str, Any], ...]
    sources: tuple[str, ...]
    analyzer: str = ""

    def apply(self, config: RunConfig, target: Target) -> RunConfig:
        return with_values(config, **dict(self.values))


def addressing(
    registry: Registry[Countermeasure], results: RunResults, analyzer: str, kinds: Iterable[str]
) -> list[str]:
    """The registered countermeasures that address a finding of `analyzer` of one of these kinds (`shortcut`,
    `over-fitting`, ...) in this run: what a finding that points to a cure names in its `decide_by`, so the
    core never names a cure."""
    analysis = results.analyses.get(analyzer)
    if analysis is None:
        return []
    wanted = set(kinds)
    return [
        entry.item.name
        for entry in registry
        if entry.item.analyzer == analyzer and any(t.finding in wanted for t in entry.item.targets(analysis, results))
    ]
