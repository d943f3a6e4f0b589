"""How a figure is written with its 95% interval in a table or a sentence, the same in every report: an
`Estimate` dict (`value`), a rate (`rate`, from `metrics.wilson`) or a mean (`mean`, from `metrics.mean_interval`)."""

from __future__ import annotations

from typing import Any


def with_interval(figure: dict[str, Any], fmt: str = "{:.2f}") -> str:
    """`value [low, high]`; the value alone for a point estimate (an interval not computed), `–` for a rate or
    mean of nothing (n = 0)."""
    value = figure.get("value", figure.get("mean", figure.get("rate")))
    if value is None:
        return "–"
    if figure.get("method") == "point" and figure["low"] == figure["high"] == value:
        return fmt.format(value)
    return f"{fmt.format(value)} [{fmt.format(figure['low'])}, {fmt.format(figure['high'])}]"
