"""The `mikiwame` command: plugins, predict, analyze, countermeasures, compare, report.
Training runs through recipes (`accelerate launch recipes/...`); these commands work on what runs left behind."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path

from accelerate import PartialState
from rich.table import Table
from rich.text import Text

from . import inert
from .compare_report import FORMATS
from .config import MIXED_PRECISION
from .discussion import save_findings
from .errors import DataError, MikiwameError
from .findings import LANGUAGES, default_lang
from .help import plugin_help
from .options import CommandLine
from .peft_method import is_hub_id
from .plugins import PLUGINS_ENV, PluginSet, build_plugin_set
from .results import RunResults
from .runner import collect_sections, user_errors_exit

DEVICES = ("auto", "cpu", "cuda")


def cmd_plugins(args: argparse.Namespace) -> int:
    plugins = args.plugins
    if args.name:
        print(inert.visible(plugin_help(plugins, args.name)), end="")
        return 0
    table = Table(title="mikiwame plugins", title_justify="left")
    table.add_column("plugin", style="bold")
    table.add_column("registers")
    for name, kinds in sorted(plugins.registered_by().items()):
        if name.startswith("reporter:"):
            continue
        table.add_row(
            name, "; ".join(f"{kind}: {', '.join(names)}" for kind, names in sorted(kinds.items())) or "hooks"
        )
    for failure in plugins.failures:
        table.add_row(Text(failure.name, "red"), Text(f"failed to load: {failure.error}", "red"))
    console = inert.console()
    console.print(table)
    console.print(f"Limit which plugins load with {PLUGINS_ENV}=name,name,...")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from .limits import cut_texts
    from .predict import RunPredictor
    from .tables import SURROGATE, read_text_file

    texts, places = list(args.texts), [f"text argument {i}" for i in range(1, len(args.texts) + 1)]
    if args.file:
        lines = read_text_file(Path(args.file)).splitlines()
        kept = [(line.strip(), f"{args.file}:{n}") for n, line in enumerate(lines, start=1) if line.strip()]
        texts += [text for text, _ in kept]
        places += [where for _, where in kept]
    if not texts:
        raise MikiwameError("no text to classify", fix='give texts: mikiwame predict RUN_DIR "text" or --file F')
    for text, where in zip(texts, places, strict=True):
        if SURROGATE.search(text):  # bytes of the command line that are not UTF-8 arrive as lone surrogates
            raise DataError(
                f"{where} is not valid UTF-8 (it holds a byte that decodes to no character)",
                fix="give the text in UTF-8 (check the terminal's encoding, e.g. LANG=ja_JP.UTF-8), or use --file",
            )
    texts, cut = cut_texts(texts, places)
    if cut:
        print(f"mikiwame: warning: {inert.visible(cut)}", file=sys.stderr)
    predictor = RunPredictor(Path(args.run_dir), args.plugins, device=args.device, mixed_precision=args.mixed_precision)
    predictions = predictor.predict(texts)
    if predictor.accelerator is not None and not predictor.accelerator.is_main_process:
        return 0
    if args.format == "jsonl":
        for p in predictions:
            print(inert.json_text(dataclasses.asdict(p)))
        return 0
    base = f" (base: the hub model {predictor.base})" if is_hub_id(predictor.base) else ""
    table = Table(title=inert.text(f"predictions of {predictor.run_dir}{base}"), title_justify="left")
    table.add_column("text")
    table.add_column("label", style="bold")
    for label in predictor.labels:
        table.add_column(inert.text(label), justify="right")
    for p in predictions:
        table.add_row(
            inert.text(p.text), inert.text(p.label), *(f"{p.probabilities[lab]:.3f}" for lab in predictor.labels)
        )
    inert.console().print(table)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    plugins = args.plugins
    reporter = plugins.reporters.get(args.format, option="--format")
    results = RunResults.load(Path(args.run_dir))
    reporter.render(results, collect_sections(plugins, results, args.lang))
    return 0


def cmd_analyze(args: argparse.Namespace) -> int:
    from .analysis import run_analyzers
    from .models import quiet_transformers

    plugins = args.plugins  # built once by `main`, as the run's config and directory are read once below
    names = [n.strip() for n in args.analyzers.split(",") if n.strip()]
    options = {dest: getattr(args, dest, default) for dest, default in args.plugin_defaults.items()}
    results = RunResults.load(Path(args.run_dir))
    with quiet_transformers():
        produced = run_analyzers(
            plugins, results, names, options, device=args.device, mixed_precision=args.mixed_precision
        )
    if not PartialState().is_main_process:
        return 0
    results = results.with_analyses(produced)
    save_findings(plugins, results)
    plugins.reporters.get("terminal").render(results, collect_sections(plugins, results, args.lang))
    return 0


def cmd_countermeasures(args: argparse.Namespace) -> int:
    from .countermeasures import command
    from .models import quiet_transformers
    from .options import csv_list

    plugins = args.plugins
    with quiet_transformers():
        written = command(Path(args.run_dir), plugins, csv_list(args.only) if args.only else None, args.seeds, True)
    if written is None:
        return 0
    results = RunResults.load(Path(args.run_dir))
    console = inert.console()
    for section in collect_sections(plugins, results):
        if section.name == "countermeasures" and section.rich is not None:
            console.print(section.rich())
    console.print(inert.text(f"summary: {written}  plot: {written.parent / 'countermeasures.png'}"))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from .compare import compare
    from .compare_report import render

    output = Path(args.output) if args.output else None
    render(compare([Path(d) for d in args.run_dirs]), args.format, args.lang, output)
    return 0


def add_inference_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device", choices=DEVICES, default="auto", help="where the model runs (auto: a GPU when one is visible)"
    )
    parser.add_argument(
        "--mixed-precision", choices=MIXED_PRECISION, default=None, help="instead of the precision the run used"
    )


def add_lang_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lang",
        choices=LANGUAGES,
        default=default_lang(),
        help="language of the findings (考察) and section titles (default: from the locale)",
    )


def build_parser(plugins: PluginSet) -> argparse.ArgumentParser:
    """Every command gets `plugins` (built once, in `main`); `analyze` also takes the options plugins add to
    recipes (e.g. `--curves-compare` of curves), passed to analyzers as `context.options` as in a live run."""
    parser = argparse.ArgumentParser(prog="mikiwame", description=__doc__.splitlines()[0])
    parser.set_defaults(plugins=plugins)
    sub = parser.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("plugins", help="list plugins and what each registered, or one plugin's options")
    listing.add_argument("name", nargs="?", help="a plugin, or a thing it registers (lora, token-stats, ...)")
    listing.set_defaults(func=cmd_plugins)
    predict = sub.add_parser("predict", help="label new texts with a finished run's model")
    predict.add_argument("run_dir")
    predict.add_argument("texts", nargs="*")
    predict.add_argument("--file", help="a text file, one text per line")
    predict.add_argument(
        "--format", choices=("table", "jsonl"), default="table", help="jsonl: one object per text (text, label, ...)"
    )
    add_inference_arguments(predict)
    predict.set_defaults(func=cmd_predict)
    analyze = sub.add_parser("analyze", help="run analyzers on a finished run without retraining")
    analyze.add_argument("run_dir")
    analyze.add_argument("analyzers", help="comma-separated analyzer names (see `mikiwame plugins`)")
    add_inference_arguments(analyze)
    add_lang_argument(analyze)
    command_line = CommandLine(analyze)
    plugins.add_options(command_line)
    analyze.set_defaults(func=cmd_analyze, plugin_defaults=command_line.defaults)
    cures = sub.add_parser(
        "countermeasures",
        help="re-run a finished run with each countermeasure its findings call for, paired with untreated re-runs",
    )
    cures.add_argument("run_dir")
    cures.add_argument("--only", help="comma-separated countermeasure names (see `mikiwame plugins`)")
    cures.add_argument("--seeds", type=int, default=3, help="re-runs per side, seeds from the run's own upward")
    cures.set_defaults(func=cmd_countermeasures)
    paired = sub.add_parser(
        "compare", help="the first finished run against each other one on the same test texts, paired (McNemar, ...)"
    )
    paired.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="two or more finished runs")
    paired.add_argument("--format", choices=FORMATS, default="terminal", help="json: the whole result")
    paired.add_argument("--output", metavar="FILE", help="write to FILE instead of the terminal")
    add_lang_argument(paired)
    paired.set_defaults(func=cmd_compare)
    report = sub.add_parser("report", help="render a finished run's saved results")
    report.add_argument("run_dir")
    report.add_argument(
        "--format",
        default="terminal",
        help="a reporter name: terminal, json, html (writes RUN_DIR/report.html), markdown (RUN_DIR/report.md), ...",
    )
    add_lang_argument(report)
    report.set_defaults(func=cmd_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser(build_plugin_set()).parse_args(argv)
    with user_errors_exit():
        return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
