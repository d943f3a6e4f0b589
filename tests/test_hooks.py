"""An outside plugin implementing every hook sees each at its moment, in order, with usable arguments."""

from __future__ import annotations

import json
from dataclasses import replace

from mikiwame.framework import hookimpl
from mikiwame.framework.config import RunConfig
from mikiwame.framework.plugins import build_plugin_set
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


class CountingAnalyzer:
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


def test_data_transforms_apply_in_registration_order():
    plugins = build_plugin_set(extra=[("first", Suffixer("1")), ("second", Suffixer("2")), ("third", Suffixer("3"))])
    data = ListTask().load(RunConfig())
    transformed = transform_data(plugins, RunConfig(), data)
    assert [e.text for e in transformed.examples] == [e.text + "123" for e in data.examples]
