"""Findings (考察): every conclusion mikiwame draws, stated either as a *fact* with its evidence or as a
*possibility* with the experiment that would decide it. The course users hand reports in for grades a
discussion by exactly this split, so the rule that decides which is which lives here, once, and every analyzer,
comparison and outside plugin builds its findings through `fact` and `possibility` below."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

SCHEMA_VERSION = 1
LEVEL = 0.05
Kind = Literal["fact", "possibility"]


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
        """True when this figure alone rules out `null` (no effect): its interval leaves it out, or its test's
        p-value is below `level`."""
        if self.p is not None and self.p < level:
            return True
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
