"""The rich terminal reporter: live model table, notices, evaluations and a progress bar during a run, and
the full report from saved results afterwards. The only place that prints."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.rule import Rule
from rich.text import Text

from mikiwame.framework import hookimpl, inert
from mikiwame.framework.results import ReportSection, RunResults
from mikiwame.plugins.reporters.run_report import data_checks_renderable, metrics_table, model_table

SHOWN_LIVE = {"model", "data"}
NOTICE_STYLE = {"banner": "bold white on red", "warning": "yellow", "info": "cyan"}


class TerminalReporter:
    name = "terminal"
    live = True

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or inert.console()
        self.progress: Progress | None = None
        self.task_id: Any = None
        self.in_run = False

    @hookimpl
    def mikiwame_before_train(self, run: Any) -> None:
        if not run.is_main_process:
            return
        self.in_run = True
        c = self.console
        for notice in run.notices:
            if notice.level == "banner":
                c.print(Panel(inert.text(notice.text), style=NOTICE_STYLE["banner"], title="model"))
            else:
                c.print(Text.assemble((f"{notice.level}:", NOTICE_STYLE[notice.level]), " ", inert.text(notice.text)))
        c.print(model_table(run.model_info))
        c.print(data_checks_renderable(run.data_checks))

    @hookimpl
    def mikiwame_on_evaluate(self, run: Any, evaluation: Any) -> None:
        if not run.is_main_process:
            return
        m = evaluation.metrics
        if evaluation.phase == "before":
            self.console.print(metrics_table(f"Before fine-tuning, {evaluation.split} split", {"before": m}))
        elif evaluation.phase == "epoch":
            line = (
                f"epoch {evaluation.epoch}: {evaluation.split} loss {m['loss']['value']:.4f}  "
                f"accuracy {m['accuracy']['value']:.3f}  macro-F1 {m['macro_f1']['value']:.3f}"
            )
            (self.progress.console if self.progress else self.console).print(line)

    @hookimpl
    def mikiwame_on_step_end(self, run: Any, step: Any) -> None:
        if not run.is_main_process:
            return
        if self.progress is None:
            self.progress = Progress(
                TextColumn("[bold]training[/] epoch {task.fields[epoch]}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=self.console,
            )
            self.progress.start()
            self.task_id = self.progress.add_task(
                "train", total=step.total_steps, completed=step.global_step - 1, epoch=step.epoch + 1, loss=""
            )
        fields: dict[str, Any] = {"epoch": step.epoch + 1}
        if step.global_step % 10 == 0 or step.global_step == step.total_steps:
            fields["loss"] = f"{float(step.loss):.4f}"
        self.progress.update(self.task_id, completed=step.global_step, **fields)

    @hookimpl
    def mikiwame_after_train(self, run: Any) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def render(self, results: RunResults, sections: list[ReportSection]) -> None:
        c = self.console
        c.print(Rule(f"mikiwame report: {results.directory}"))
        m = results.metrics
        if m.get("stopped_early"):
            kept = m["best_epoch"]
            c.print(
                inert.text(f"early stopping: validation loss stopped improving; restored the weights of epoch {kept}")
            )
        elif m.get("best_epoch") and m.get("kept_epoch", m["best_epoch"]) == m["best_epoch"]:
            c.print(inert.text(f"best validation loss at epoch {m['best_epoch']} (those weights are kept)"))
        elif m.get("best_epoch"):
            c.print(
                inert.text(f"best validation loss at epoch {m['best_epoch']}; kept as trained: epoch {m['kept_epoch']}")
            )
        for section in sections:
            if self.in_run and section.name in SHOWN_LIVE:
                continue
            if section.rich is not None:
                c.print(section.rich())
        c.print(
            Text.assemble(
                "run directory: ",
                inert.text(results.directory, "bold"),
                "  (predictions.jsonl, metrics.json, plots/, model/)",
            )
        )
        self.in_run = False


@hookimpl
def mikiwame_register_reporters(register):
    register(TerminalReporter())
