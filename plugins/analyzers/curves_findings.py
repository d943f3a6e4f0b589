"""Findings of `curves`, from its saved JSON (the run's own curves, not those it is compared with). Over-fitting
by the analyzer's rule is a fact when the paired rise of the validation loss over its minimum (per validation
text, bootstrap interval, recorded by the engine after the best epoch) excludes 0; a run recorded before that
interval existed, still improving at its last epoch, or hardly learning is a possibility with the re-run that
would decide it."""

from __future__ import annotations

from typing import Any

from mikiwame.framework.discussion import rerun_command
from mikiwame.framework.findings import Claim, Evidence, Finding, conclude, possibility
from mikiwame.framework.results import RunResults

SOURCE = "curves"


def overfitting_finding(results: RunResults, run: dict[str, Any]) -> Finding:
    epochs, best = run["epochs"], run["diagnosis"]["best_index"]
    later = [e for e in epochs[best + 1 :] if "validation_loss_rise" in e]
    worst = max(epochs[best + 1 :], key=lambda e: e["validation_loss"])
    low, high = epochs[best], epochs[-1]
    numbers_ja = (
        f"検証損失はエポック {low['epoch']} の {low['validation_loss']:.3f} から最大 {worst['validation_loss']:.3f}"
        f"（エポック {worst['epoch']}）に上がり、その間に訓練損失は {low['train_loss']:.3f} から "
        f"{high['train_loss']:.3f} に下がった"
    )
    numbers_en = (
        f"validation loss rose from {low['validation_loss']:.3f} at epoch {low['epoch']} to "
        f"{worst['validation_loss']:.3f} at epoch {worst['epoch']} while training loss fell from "
        f"{low['train_loss']:.3f} to {high['train_loss']:.3f}"
    )
    claim = Claim(
        f"過学習している：{numbers_ja}。",
        f"The model over-fitted: {numbers_en}.",
        f"過学習している可能性がある：{numbers_ja}（上昇の区間がないか、0 を含む）。",
        f"The model may have over-fitted: {numbers_en} (the rise has no interval, or it includes 0).",
    )
    rise = max(later, key=lambda e: e["validation_loss_rise"]["value"]) if later else None
    evidence = (
        [
            Evidence(
                f"validation loss at epoch {rise['epoch']} − at epoch {low['epoch']}",
                rise["validation_loss_rise"]["value"],
                rise["validation_loss_rise"]["n"],
                (rise["validation_loss_rise"]["low"], rise["validation_loss_rise"]["high"]),
                "paired bootstrap over validation texts, 95%",
            )
        ]
        if rise
        else []
    )
    kept = results.metrics.get("best_epoch")
    return conclude(
        claim,
        evidence,
        0.0,
        scope="validation split, this run's training",
        source=SOURCE,
        decide_by=rerun_command(results, f"--epochs {len(epochs)} --seed 1")
        + " (a run of this version records the paired rise)"
        + (f"; the run kept the weights of epoch {kept}" if kept else ""),
        tags=("curves",),
    )


def curves_findings(results: RunResults, result: dict[str, Any]) -> list[Finding]:
    runs = [r for r in result.get("runs", []) if r.get("directory") == str(results.directory)] or result.get(
        "runs", []
    )[:1]
    if not runs or not runs[0]["epochs"]:
        return []
    run = runs[0]
    verdict, epochs = run["diagnosis"]["verdict"], run["epochs"]
    if verdict == "over-fitting":
        return [overfitting_finding(results, run)]
    if verdict == "still improving":
        return [
            possibility(
                f"検証損失は最後のエポック {epochs[-1]['epoch']} でも最小だった。"
                "もっと学習すれば良くなる可能性がある。",
                f"Validation loss was still lowest at the last epoch ({epochs[-1]['epoch']}): more epochs may help.",
                [],
                scope="validation split, this run's training",
                source=SOURCE,
                decide_by=rerun_command(results, f"--epochs {2 * len(epochs)}"),
                tags=("curves",),
            )
        ]
    if verdict == "under-fitting":
        first, last = epochs[0]["train_loss"], min(e["train_loss"] for e in epochs)
        return [
            possibility(
                f"訓練損失がほとんど下がっていない（{first:.3f} → {last:.3f}）。"
                "学習率が低すぎるか、エポックが少なすぎる可能性がある。",
                f"Training loss hardly fell ({first:.3f} → {last:.3f}): the learning rate may be too low or the "
                "epochs too few.",
                [],
                scope="this run's training",
                source=SOURCE,
                decide_by=rerun_command(
                    results, f"--lr {10 * float(results.model_info.get('learning_rate') or 1e-4):g}"
                )
                + f", or --epochs {2 * len(epochs)}",
                tags=("curves",),
            )
        ]
    return []
