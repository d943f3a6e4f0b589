"""An outside plugin implementing every hook sees each at its moment, in order, with usable arguments."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from mikiwame.framework import hookimpl
from mikiwame.framework.analysis import Analyzer
from mikiwame.framework.config import RunConfig
from mikiwame.framework.errors import PluginError
from mikiwame.framework.plugins import build_plugin_set, chained
from mikiwame.framework.recipe import parse_config
from mikiwame.framework.results import ReportSection
from mikiwame.framework.runner import run, transform_data
from mikiwame.framework.task import Example, TaskData

from .conftest import tiny_config

TEXTS = {"sports": "巨人が阪神に勝利した試合", "economy": "日銀が金利を据え置いた発表"}


class ListTask:
    name = "listed"
    description = "a task from a Python list"

    def load(self, config: RunConfig) -> TaskData:
        examples = [
            Example(f"{label}-{split}-{i}", f"{text}{i}", label, split)
            for label, text in TEXTS.items()
            for split, n in (("train", 16), ("validation", 4), ("test", 4))
            for i in range(n)
        ]
        return TaskData(self.name, examples, "a list")


class CountingAnalyzer(Analyzer):
    name = "count"
    description = "counts predictions per split"

    def analyze(self, context):
        counts = {}
        for p in context.predictions:
            counts[p["split"]] = counts.get(p["split"], 0) + 1
        return {"counts": counts}


class CapturingReporter:
    name = "capture"
    live = True

    def __init__(self):
        self.rendered = []

    def render(self, results, sections):
        self.rendered.append([s.name for s in sections])


class Recorder:
    def __init__(self):
        self.moments = []
        self.reporter = CapturingReporter()

    @hookimpl
    def mikiwame_register_tasks(self, register):
        register(ListTask())

    @hookimpl
    def mikiwame_register_analyzers(self, register):
        register(CountingAnalyzer())

    @hookimpl
    def mikiwame_register_reporters(self, register):
        register(self.reporter)

    @hookimpl
    def mikiwame_register_models(self, register):
        pass  # registering nothing is allowed

    @hookimpl
    def mikiwame_register_peft_methods(self, register):
        pass

    @hookimpl
    def mikiwame_add_arguments(self, parser):
        parser.add_argument("--shout", action="store_true")

    @hookimpl
    def mikiwame_before_train(self, run):
        self.moments.append(("before_train", run.model_info["peft"], run.task_data.name))

    @hookimpl
    def mikiwame_on_step_end(self, run, step):
        self.moments.append(("step", step.global_step, step.total_steps))

    @hookimpl
    def mikiwame_on_evaluate(self, run, evaluation):
        self.moments.append(("evaluate", evaluation.phase, evaluation.split, evaluation.metrics["n"]))

    @hookimpl
    def mikiwame_after_train(self, run):
        self.moments.append(("after_train",))

    @hookimpl
    def mikiwame_report_sections(self, results):
        if "count" in results.analyses:
            return [ReportSection("count", "Counts", 99, results.analyses["count"]["counts"])]
        return None


def test_every_moment_reaches_an_outside_plugin_in_order(tmp_path):
    recorder = Recorder()
    ps = build_plugin_set(extra=[("recorder", recorder)])
    config = parse_config("test", "test", tiny_config(tmp_path, task="listed", train_size=None), ["--shout"], ps)
    assert config.options["shout"] is True  # built-in plugins add their own options beside it
    done = run(_with(config, analyze=["count"]), plugins=ps)
    kinds = [m[0] for m in recorder.moments]
    assert kinds[0] == "before_train"
    assert recorder.moments[1:3] == [("evaluate", "before", "validation", 8), ("evaluate", "before", "test", 8)]
    steps = [m for m in recorder.moments if m[0] == "step"]
    assert [s[1] for s in steps] == list(range(1, 9)) and steps[0][2] == 8  # 32 texts / 8, 2 epochs
    assert kinds.count("after_train") == 1
    assert kinds.index("after_train") > max(i for i, k in enumerate(kinds) if k == "step")
    assert recorder.moments[-2:] == [("evaluate", "after", "validation", 8), ("evaluate", "after", "test", 8)]
    assert json.loads((done / "analyses" / "count.json").read_text())["counts"] == {
        "train": 32,
        "validation": 8,
        "test": 8,
    }
    assert recorder.reporter.rendered and recorder.reporter.rendered[-1][-1] == "count"
    assert json.loads((done / "config.json").read_text())["options"]["shout"] is True


def _with(config: RunConfig, **changes) -> RunConfig:
    values = config.to_dict()
    values.update(changes)
    return RunConfig(**values)


class Suffixer:
    """A data step that marks every text, so the order of several steps shows in the texts."""

    def __init__(self, mark: str) -> None:
        self.mark = mark

    @hookimpl
    def mikiwame_transform_data(self, config, data):
        return replace(data, examples=[replace(e, text=e.text + self.mark) for e in data.examples])


class FirstSuffixer(Suffixer):
    @hookimpl(tryfirst=True)
    def mikiwame_transform_data(self, config, data):
        return super().mikiwame_transform_data(config, data)


class LastSuffixer(Suffixer):
    @hookimpl(trylast=True)
    def mikiwame_transform_data(self, config, data):
        return super().mikiwame_transform_data(config, data)


class WrappingSuffixer:
    @hookimpl(wrapper=True)
    def mikiwame_transform_data(self, config, data):
        return (yield)


def test_data_transforms_chain_in_pluggys_call_order():
    """Each step sees the previous one's texts; pluggy's order: tryfirst, then the last loaded first, trylast."""
    steps = [("a", LastSuffixer("a")), ("b", Suffixer("b")), ("c", FirstSuffixer("c")), ("d", Suffixer("d"))]
    plugins = build_plugin_set(extra=steps)
    data = ListTask().load(RunConfig())
    transformed = transform_data(plugins, RunConfig(), data)
    assert [e.text for e in transformed.examples] == [e.text + "cdba" for e in data.examples]
    unmarked = build_plugin_set(extra=[("first", Suffixer("1")), ("second", Suffixer("2"))])
    assert transform_data(unmarked, RunConfig(), data).examples[0].text == data.examples[0].text + "21"


def test_the_built_in_data_steps_keep_their_order():
    """Label names first, then the task's entity step and the prompting models' evaluation cap (held-out
    splits only), then the cures (over-sampling last)."""
    order = [impl.plugin_name for impl in chained(build_plugin_set().pm, "mikiwame_transform_data")]
    assert order == ["labels", "entities", "cloze", "shortcut_cures", "imbalance_cures"]


def test_a_wrapper_on_the_data_chain_is_refused_with_one_message():
    plugins = build_plugin_set(extra=[("wrapping", WrappingSuffixer()), ("plain", Suffixer("1"))])
    with pytest.raises(
        PluginError, match=r"(?s)plugin .wrapping. marks its mikiwame_transform_data wrapper.*Fix: drop"
    ):
        transform_data(plugins, RunConfig(), ListTask().load(RunConfig()))
