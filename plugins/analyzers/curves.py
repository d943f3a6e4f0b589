"""`curves`: training and validation loss and accuracy per epoch (and per `--eval-every` step), an over-fitting
diagnosis in words, and a comparison of several runs (`--curves-compare RUN_DIR ...`).

The rule (docs/analyzers.md): a run over-fits when, after the evaluation with the lowest validation loss,
validation loss stays more than `RISE` (relative) above that minimum for at least `CONSECUTIVE` evaluations in
a row while the training loss at the end of that stretch is below the training loss at the minimum.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from rich.console import Group
from rich.table import Table

from mikiwame.framework import hookimpl, inert
from mikiwame.framework import html as h
from mikiwame.framework.analysis import AnalysisContext, Analyzer
from mikiwame.framework.compare import ComparedRun, compare_runs, config_differences
from mikiwame.framework.compare_report import comparison_table as paired_table
from mikiwame.framework.compare_report import differences_table
from mikiwame.framework.errors import ConfigError
from mikiwame.framework.findings import Finding
from mikiwame.framework.options import add_alias
from mikiwame.framework.results import ESTIMATE, ReportSection, RunResults
from mikiwame.framework.runfiles import Between, Count, Fraction, Nullable, Obj
from mikiwame.plugins.analyzers.curves_findings import curves_findings

NAME = "curves"
CONSECUTIVE = 2
RISE = 0.01
UNDERFIT_DROP = 0.05
POINT = Obj(
    {"epoch": float, "train_loss": float},
    {"validation_loss": float, "validation_accuracy": Fraction, "validation_loss_rise": ESTIMATE},
)
DIAGNOSIS = Obj(
    {"overfitting": bool, "verdict": str, "text": str},
    {"best_index": Count, "best_validation_loss": float},
)
RUN = Obj(
    {
        "name": str,
        "epochs": list[POINT],  # type: ignore[valid-type]  # a schema, not a type
        "steps": list[POINT],  # type: ignore[valid-type]
        "kept_epoch": Nullable(float),
        "diagnosis": DIAGNOSIS,
        "step_diagnosis": Nullable(DIAGNOSIS),
        "final": Nullable(Obj({"split": str, "accuracy": ESTIMATE})),
    }
)
RESULT = Obj({"runs": Annotated[list[RUN], Between(1)], "figure": str}, {"rule": str})  # type: ignore[valid-type]


def diagnose(
    points: list[dict[str, Any]], unit: str = "epoch", consecutive: int = CONSECUTIVE, rise: float = RISE
) -> dict[str, Any]:
    """Apply the over-fitting rule to evaluation points (dicts with `unit`, train_loss, validation_loss)."""
    points = [p for p in points if p.get("validation_loss") is not None]
    if len(points) < 2:
        text = f"fewer than 2 validation {unit}s (a fitted classifier, or no validation split): no diagnosis"
        return {"overfitting": False, "verdict": "too few", "text": text}
    val = [p["validation_loss"] for p in points]
    train = [p["train_loss"] for p in points]
    best = min(range(len(val)), key=val.__getitem__)
    streak, end = 0, None
    for i in range(best + 1, len(points)):
        streak = streak + 1 if val[i] > val[best] * (1 + rise) else 0
        if streak >= consecutive and train[i] < train[best]:
            end = i
    at = points[best][unit]
    base = {"best_index": best, "best_" + unit: at, "best_validation_loss": val[best]}
    if end is not None:
        text = (
            f"over-fitting: validation loss rose after {unit} {_fmt(at)} ({val[best]:.3f} → {max(val[best + 1 :]):.3f}"
            f" at worst) while training loss fell ({train[best]:.3f} → {train[-1]:.3f})"
        )
        return {**base, "overfitting": True, "verdict": "over-fitting", "text": text}
    if train[0] > 0 and (train[0] - min(train)) / train[0] < UNDERFIT_DROP:
        text = (
            f"under-fitting: training loss hardly fell ({train[0]:.3f} → {min(train):.3f}, "
            f"less than {UNDERFIT_DROP:.0%}); try a higher learning rate or more epochs"
        )
        return {**base, "overfitting": False, "verdict": "under-fitting", "text": text}
    if best == len(points) - 1:
        text = f"no over-fitting: validation loss was still lowest at the last {unit} ({_fmt(at)}); more may help"
        return {**base, "overfitting": False, "verdict": "still improving", "text": text}
    text = (
        f"no over-fitting by the rule: validation loss was lowest at {unit} {_fmt(at)} ({val[best]:.3f}) and did not "
        f"stay more than {rise:.0%} above it for {consecutive} evaluations while training loss fell"
    )
    return {**base, "overfitting": False, "verdict": "plateau", "text": text}


def _fmt(x: float) -> str:
    return f"{x:g}" if isinstance(x, int) or float(x).is_integer() else f"{x:.2f}"


def run_curves(results: RunResults) -> dict[str, Any]:
    m = results.metrics
    epochs, steps = m.get("epochs", []), m.get("steps", [])
    diagnosis = diagnose(epochs, "epoch")
    kept_epoch = m.get("kept_epoch", m.get("best_epoch"))  # runs before --restore-best kept the best epoch
    if diagnosis["overfitting"] and kept_epoch:
        if kept_epoch != m.get("best_epoch"):
            kept = "the run kept the model as trained (--patience 0), the weights of"
        elif m.get("stopped_early"):
            kept = "early stopping restored"
        else:
            kept = "the run kept the best validation loss of"
        diagnosis["text"] += f": {kept} epoch {kept_epoch}"
    after = m.get("after", {})
    split = "test" if "test" in after else next(iter(after), None)
    return {
        "directory": str(results.directory),
        "name": results.name,
        "epochs": epochs,
        "steps": steps,
        "best_epoch": m.get("best_epoch"),
        "kept_epoch": kept_epoch,
        "stopped_early": bool(m.get("stopped_early")),
        "diagnosis": diagnosis,
        "step_diagnosis": diagnose(steps, "step") if steps else None,
        "final": {"split": split, "accuracy": after[split]["accuracy"], "macro_f1": after[split].get("macro_f1")}
        if split
        else None,
    }


def save_plot(runs: list[dict[str, Any]], path: Path) -> None:
    """Loss (train dashed, validation solid) and validation accuracy; one colour per run."""
    from mikiwame.framework import plots  # matplotlib, imported only to draw

    fig, (loss_ax, acc_ax) = plots.plt.subplots(1, 2, figsize=(10, 3.8))
    for k, r in enumerate(runs):
        colour, label = f"C{k}", r["name"] if len(runs) > 1 else ""
        if r["steps"]:
            x = [s["epoch"] for s in r["steps"]]
            loss_ax.plot(x, [s.get("validation_loss") for s in r["steps"]], color=colour, alpha=0.35, lw=1)
            acc_ax.plot(x, [s.get("validation_accuracy") for s in r["steps"]], color=colour, alpha=0.35, lw=1)
        x = [e["epoch"] for e in r["epochs"]]
        loss_ax.plot(x, [e["train_loss"] for e in r["epochs"]], "--o", color=colour, ms=3, label=f"{label} train")
        if all("validation_loss" in e for e in r["epochs"]):
            loss_ax.plot(x, [e["validation_loss"] for e in r["epochs"]], "-o", color=colour, ms=3, label=f"{label} val")
            acc_ax.plot(x, [e["validation_accuracy"] for e in r["epochs"]], "-o", color=colour, ms=3, label=label)
        if r["kept_epoch"]:
            loss_ax.axvline(r["kept_epoch"], color=colour, ls=":", lw=1)
    loss_ax.set(xlabel="epoch", ylabel="loss", title="loss (dotted line: kept epoch)")
    loss_ax.legend(fontsize=7)
    acc_ax.set(xlabel="epoch", ylabel="accuracy", title="validation accuracy", ylim=(0, 1))
    if len(runs) > 1:
        acc_ax.legend(fontsize=7)
    plots.save_figure(fig, path)


class CurvesAnalyzer(Analyzer):
    name = NAME
    description = (
        "loss/accuracy curves per epoch and step, over-fitting diagnosis, comparison of runs (--curves-compare)"
    )

    def analyze(self, context: AnalysisContext) -> dict[str, Any]:
        others = [RunResults.load(Path(d)) for d in context.options.get("compare") or []]
        runs = [run_curves(r) for r in (context.results, *others)]
        figure = context.directory / "analyses" / "curves.png"
        save_plot(runs, figure)
        result = {
            "rule": f"validation loss > (1 + {RISE}) × its minimum for ≥ {CONSECUTIVE} consecutive evaluations "
            "after the minimum, while training loss is below its value at the minimum",
            "runs": runs,
            "figure": str(figure.relative_to(context.directory)),
        }
        if others:
            result["paired"] = paired_comparison([context.results, *others])
        return result


def paired_comparison(results: list[RunResults]) -> dict[str, Any]:
    """`mikiwame compare` of this run against the others (framework/compare.py): paired figures on the same
    test texts and the configuration differences; runs tested on other texts keep their curves and say why
    they are not paired."""
    try:
        return compare_runs([ComparedRun.of(r) for r in results])
    except ConfigError as err:
        return {"config_differences": config_differences(results), "comparisons": [], "not_paired": err.what}


CURVE_COLUMNS = ("epoch", "train loss", "validation loss", "validation accuracy")


def curve_rows(run: dict[str, Any]) -> list[tuple[bool, list[str]]]:
    """(kept, cells) per epoch of one run."""
    return [
        (
            e["epoch"] == run["kept_epoch"],
            [
                f"{e['epoch']}{' (kept)' if e['epoch'] == run['kept_epoch'] else ''}",
                f"{e['train_loss']:.4f}",
                f"{e['validation_loss']:.4f}" if "validation_loss" in e else "–",
                f"{e['validation_accuracy']:.3f}" if "validation_accuracy" in e else "–",
            ],
        )
        for e in run["epochs"]
    ]


def curves_table(result: dict[str, Any]) -> Table:
    table = Table(title="Learning curves per epoch", title_justify="left", caption=f"rule: {result['rule']}")
    for column in CURVE_COLUMNS:
        table.add_column(column, justify="right")
    for kept, cells in curve_rows(result["runs"][0]):
        table.add_row(*cells, style="bold" if kept else None)
    return table


def curves_html(results: RunResults, result: dict[str, Any]) -> str:
    """The diagnosis first (what a reader wants), then the epochs, the comparison and the plot."""
    first = result["runs"][0]
    rows = curve_rows(first)
    parts: list[Any] = [h.paragraph(first["diagnosis"]["text"], h.BAD if first["diagnosis"]["overfitting"] else h.GOOD)]
    if first["step_diagnosis"]:
        parts.append(h.paragraph(f"per step ({len(first['steps'])} evaluations): {first['step_diagnosis']['text']}"))
    parts.append(
        h.table(
            CURVE_COLUMNS,
            [cells for _, cells in rows],
            f"Learning curves per epoch; rule: {result['rule']}",
            numeric=range(4),
            row_classes=["kept" if kept else None for kept, _ in rows],
        )
    )
    parts += [h.rich_html(table) for table in comparison_tables(result)]
    parts.append(h.image(results.directory, result["figure"], "learning curves"))
    return h.join(parts)


def _estimate(figure: dict[str, Any] | None) -> str:
    return f"{figure['value']:.3f} [{figure['low']:.3f}, {figure['high']:.3f}]" if figure else "–"


def comparison_table(runs: list[dict[str, Any]]) -> Table:
    table = Table(title="Runs compared", title_justify="left")
    columns = ("run", "epochs", "kept epoch", "best validation loss", "final accuracy [95% CI]", "final macro-F1")
    for column in (*columns, "diagnosis"):
        table.add_column(column)
    for r in runs:
        final = r["final"] or {}
        acc = final.get("accuracy")
        table.add_row(
            inert.text(r["name"]),
            str(len(r["epochs"])),
            str(r["kept_epoch"]),
            f"{r['diagnosis'].get('best_validation_loss', float('nan')):.4f}",
            f"{_estimate(acc)} ({final['split']}, n={acc['n']})" if acc else "–",
            _estimate(final.get("macro_f1")),
            r["diagnosis"]["verdict"],
        )
    return table


def comparison_tables(result: dict[str, Any]) -> list[Any]:
    """With --compare: the runs side by side, their configuration differences, and each run paired against
    this one on the same test texts (or why it is not)."""
    if len(result["runs"]) < 2:
        return []
    parts: list[Any] = [comparison_table(result["runs"])]
    paired = result.get("paired")
    if paired is None:  # a result saved before curves paired the runs
        return parts
    if paired["config_differences"]:
        parts.append(differences_table(result["runs"], paired["config_differences"]))
    parts += [paired_table(c) for c in paired["comparisons"]]
    if paired.get("not_paired"):
        parts.append(inert.text(f"not paired: {paired['not_paired']}"))
    return parts


@hookimpl
def mikiwame_report_sections(results: RunResults) -> list[ReportSection]:
    result = results.analysis(NAME, RESULT)
    if result is None:
        return []

    def render() -> Group:
        first = result["runs"][0]
        style = "bold red" if first["diagnosis"]["overfitting"] else "green"
        parts: list[Any] = [curves_table(result)] if first["epochs"] else [inert.text("no training epochs recorded")]
        parts.append(inert.text(first["diagnosis"]["text"], style=style))
        if first["step_diagnosis"]:
            parts.append(inert.text(f"per step ({len(first['steps'])} evaluations): {first['step_diagnosis']['text']}"))
        parts += comparison_tables(result)
        parts.append(inert.text(f"plot: {results.directory / result['figure']}"))
        return Group(*parts)

    return [ReportSection(NAME, "Learning curves", 80, result, render, lambda: curves_html(results, result))]


@hookimpl
def mikiwame_add_arguments(parser):
    compare = parser.add_argument(
        "--curves-compare",
        dest="compare",
        nargs="+",
        metavar="RUN_DIR",
        default=None,
        help="curves: also draw and diagnose these finished runs beside this one",
    )
    add_alias(parser, "--compare", compare)


@hookimpl
def mikiwame_register_analyzers(register):
    register(CurvesAnalyzer())


@hookimpl
def mikiwame_findings(results: RunResults) -> list[Finding]:
    result = results.analysis(NAME, RESULT)
    return [] if result is None else curves_findings(results, result)
