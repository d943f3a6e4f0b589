"""Findings (考察): every conclusion mikiwame draws, stated either as a *fact* with its evidence or as a
*possibility* with the experiment that would decide it. The course users hand reports in for grades a
discussion by exactly this split, so the rule that decides which is which lives here, once, and every analyzer,
comparison and outside plugin builds its findings through `fact` and `possibility` below."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

SCHEMA_VERSION = 1
LEVEL = 0.05
LANGUAGES = ("ja", "en")
Kind = Literal["fact", "possibility"]


def default_lang() -> str:
    """`ja` when the user's locale is Japanese (LC_ALL, LC_MESSAGES or LANG, as gettext reads them), else `en`:
    the default of `--lang`."""
    for variable in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(variable)
        if value:
            return "ja" if value.lower().startswith("ja") else "en"
    return "en"


@dataclass(frozen=True)
class Evidence:
    """One measured figure behind a claim: its value, its n, and an interval or a test with its p-value."""

    metric: str
    value: float
    n: int
    interval: tuple[float, float] | None = None
    test: str | None = None
    p: float | None = None

    def excludes_no_effect(self, null: float, level: float = LEVEL) -> bool:
        """True when this figure alone rules out `null` (no effect): its test's p-value is below `level`, or,
        without a test, its interval leaves `null` out. A test decides when there is one: its p may be a
        Benjamini–Hochberg q-value, which the figure's own (uncorrected) interval knows nothing of."""
        if self.p is not None:
            return self.p < level
        if self.interval is not None:
            low, high = self.interval
            return not (low <= null <= high)
        return False


@dataclass(frozen=True)
class Finding:
    kind: Kind
    claim: dict[str, str]
    evidence: tuple[Evidence, ...]
    scope: str
    source: str
    decide_by: str | None = None
    tags: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["evidence"] = [asdict(e) for e in self.evidence]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        evidence = tuple(
            Evidence(**{**e, "interval": tuple(e["interval"]) if e.get("interval") is not None else None})
            for e in data["evidence"]
        )
        return cls(
            kind=data["kind"],
            claim=dict(data["claim"]),
            evidence=evidence,
            scope=data["scope"],
            source=data["source"],
            decide_by=data.get("decide_by"),
            tags=tuple(data.get("tags", ())),
        )


def fact(
    claim_ja: str, claim_en: str, evidence: list[Evidence], scope: str, source: str, tags: tuple[str, ...] = ()
) -> Finding:
    """A measured statement about this run. Refuses evidence without an n or without an interval or p-value:
    a fact that cannot show its uncertainty is not one."""
    if not evidence or any(e.n <= 0 or (e.interval is None and e.p is None) for e in evidence):
        raise ValueError(f"a fact needs evidence with n and an interval or p-value: {claim_en!r}")
    return Finding("fact", {"ja": claim_ja, "en": claim_en}, tuple(evidence), scope, source, None, tags)


def possibility(
    claim_ja: str,
    claim_en: str,
    evidence: list[Evidence],
    scope: str,
    source: str,
    decide_by: str,
    tags: tuple[str, ...] = (),
) -> Finding:
    """A hypothesis: a non-significant effect, an explanation of why, or a claim beyond this run's data. It
    must name the experiment that would decide it."""
    if not decide_by:
        raise ValueError(f"a possibility needs decide_by, the experiment that would decide it: {claim_en!r}")
    return Finding("possibility", {"ja": claim_ja, "en": claim_en}, tuple(evidence), scope, source, decide_by, tags)


@dataclass(frozen=True)
class Claim:
    """One conclusion worded twice in each language: as a measured fact, and as a possibility (「〜の可能性が
    ある」, "may"). `conclude` picks the wording the evidence earns, so an analyzer never decides it by hand."""

    fact_ja: str
    fact_en: str
    may_ja: str
    may_en: str


def adjust_p_values(p_values: Sequence[float]) -> list[float]:
    """Benjamini–Hochberg q-values (`scipy.stats.false_discovery_control`): what an analyzer that tests many
    things (every class, every slice, every entity) puts in its evidence's `p` instead of the raw p-values."""
    if not p_values:
        return []
    from scipy import stats  # here: scipy costs every command's start-up

    return [float(q) for q in stats.false_discovery_control(list(p_values))]


def excludes_no_effect(
    evidence: Sequence[Evidence], nulls: float | Sequence[float | None], level: float = LEVEL
) -> bool:
    """True when every tested figure rules out its "no effect" value: `nulls` is one value for all of them or
    one per figure, None marking a figure shown for context only (its own interval is still required of a
    fact). At least one figure must be tested."""
    per_figure = [nulls] * len(evidence) if isinstance(nulls, int | float) else list(nulls)
    if len(per_figure) != len(evidence):
        raise ValueError(f"{len(per_figure)} null values for {len(evidence)} figures of evidence")
    tested = [(e, null) for e, null in zip(evidence, per_figure, strict=True) if null is not None]
    return bool(tested) and all(e.excludes_no_effect(null, level) for e, null in tested)


def conclude(
    claim: Claim,
    evidence: list[Evidence],
    nulls: float | Sequence[float | None],
    *,
    scope: str,
    source: str,
    decide_by: str,
    measured: bool = True,
    level: float = LEVEL,
    tags: tuple[str, ...] = (),
) -> Finding:
    """The rule, written once: a `fact` only when the claim was measured on this run's data (`measured`; an
    explanation of why, or a claim about other data or models, is not) and its evidence excludes "no effect"
    at `level` (q-values from `adjust_p_values` where many things were tested); else a `possibility`, worded
    as one, with `decide_by`, the experiment (a runnable command where one exists) that would decide it.
    A causal claim about the model is `measured` only when an intervention (deletion, swap) measured it."""
    if measured and excludes_no_effect(evidence, nulls, level):
        return fact(claim.fact_ja, claim.fact_en, evidence, scope, source, tags)
    return possibility(claim.may_ja, claim.may_en, evidence, scope, source, decide_by, tags)
