"""The findings rule (framework/findings.py), written once: a fact only when measured on this run and its
evidence excludes "no effect"; a test's (BH-adjusted) p decides over an interval; everything else a
possibility with its deciding experiment."""

from __future__ import annotations

import pytest

from mikiwame.framework.findings import Claim, Evidence, adjust_p_values, conclude, default_lang, fact

CLAIM = Claim("効果がある。", "There is an effect.", "効果がある可能性がある。", "There may be an effect.")


def decide(evidence, nulls=0.0, **kwargs):
    return conclude(CLAIM, evidence, nulls, scope="test", source="test", decide_by="more data", **kwargs)


def test_an_interval_that_excludes_the_null_is_a_fact_one_that_includes_it_a_possibility():
    strong = decide([Evidence("flip rate", 0.9, 23, (0.73, 0.97), "Wilson 95%")])
    assert strong.kind == "fact" and strong.claim["en"] == "There is an effect." and strong.decide_by is None
    weak = decide([Evidence("flip rate", 0.5, 4, (0.15, 0.85), "Wilson 95%")], nulls=0.6)
    assert weak.kind == "possibility" and weak.claim["ja"] == "効果がある可能性がある。"
    assert weak.decide_by == "more data"


def test_a_test_decides_over_the_figures_own_interval():
    """Its p may be a BH q-value: an uncorrected interval that leaves the null out must not make it a fact."""
    corrected = Evidence("difference", 0.3, 16, (0.05, 0.55), "binomial, BH-adjusted", p=0.08)
    assert decide([corrected]).kind == "possibility"
    assert decide([Evidence("difference", 0.3, 16, None, "binomial", p=0.01)]).kind == "fact"


def test_benjamini_hochberg_turns_a_lone_small_p_among_many_into_a_possibility():
    p_values = [0.01] + [0.5] * 19
    q = adjust_p_values(p_values)
    assert q[0] == pytest.approx(0.2)
    assert decide([Evidence("z", 3.0, 40, None, "z-test", p=p_values[0])]).kind == "fact"
    assert decide([Evidence("z", 3.0, 40, None, "z-test, BH-adjusted", p=q[0])]).kind == "possibility"
    assert adjust_p_values([]) == []


def test_context_figures_are_not_tested_but_a_fact_needs_a_tested_one():
    context = Evidence("accuracy before", 0.2, 96, (0.1, 0.3), "Wilson 95%")
    change = Evidence("change", 0.4, 96, (0.2, 0.6), "non-overlap")
    assert decide([context, change], [None, 0.0]).kind == "fact"
    assert decide([context, change], [None, None]).kind == "possibility"
    with pytest.raises(ValueError, match="2 null values for 1"):
        decide([change], [None, 0.0])


def test_what_was_not_measured_on_this_run_is_a_possibility_however_strong():
    strong = [Evidence("share", 1.0, 70, (0.95, 1.0), "Wilson 95%")]
    assert decide(strong, measured=False).kind == "possibility"


def test_a_fact_refuses_evidence_without_n_or_uncertainty():
    with pytest.raises(ValueError, match="interval or p-value"):
        fact("a", "a", [Evidence("accuracy", 0.9, 96)], "test", "test")
    with pytest.raises(ValueError):
        fact("a", "a", [Evidence("accuracy", 0.9, 0, (0.8, 0.95))], "test", "test")


def test_the_language_defaults_from_the_locale(monkeypatch):
    for variable in ("LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(variable, raising=False)
    assert default_lang() == "en"
    monkeypatch.setenv("LANG", "ja_JP.UTF-8")
    assert default_lang() == "ja"
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    assert default_lang() == "en"
