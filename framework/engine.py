"""The training and evaluation loop on Accelerate, kept readable top to bottom like accelerate's
`examples/nlp_example.py`. Plugins see it only through hook calls at clear moments."""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from accelerate import Accelerator, DataLoaderConfiguration, skip_first_batches
from accelerate.state import AcceleratorState, GradientState
from accelerate.utils import DistributedType, ProjectConfiguration, set_seed
from torch.utils.data import DataLoader
from transformers import get_linear_schedule_with_warmup

from .batching import EncodedTexts, LengthGroupedBatches, PadToLongest
from .config import RunConfig
from .dropout import use_fast_dropout
from .errors import ConfigError
from .precision import hold_frozen_linears_in


def make_accelerator(config: RunConfig, project_dir: Path | None = None) -> Accelerator:
    """Refuses the precision settings Accelerate would silently ignore or that the hardware lacks."""
    cuda = torch.cuda.is_available()
    if config.mixed_precision == "fp16" and not cuda:
        raise ConfigError(
            "--mixed-precision fp16 needs a CUDA GPU; without one Accelerate silently trains in fp32",
            fix="use --mixed-precision bf16 (fast on CPU) or no",
        )
    if config.mixed_precision == "bf16" and cuda and not torch.cuda.is_bf16_supported():
        raise ConfigError(
            "--mixed-precision bf16 is not supported by this GPU (e.g. a T4)",
            fix="use --mixed-precision fp16 (trained with a gradient scaler)",
        )
    for tracker in config.report_to:
        _check_tracker(tracker)
    set_seed(config.seed)
    # Accelerate keeps its settings in process-wide singletons; several runs in one process (tests, the PEFT
    # comparison) may differ in precision or accumulation. The process group (PartialState) is kept.
    AcceleratorState._reset_state(reset_partial_state=False)
    GradientState._reset_state()
    return Accelerator(
        mixed_precision=config.mixed_precision,
        gradient_accumulation_steps=config.grad_accum,
        log_with=config.report_to or None,
        project_config=ProjectConfiguration(project_dir=str(project_dir) if project_dir else None),
        dataloader_config=DataLoaderConfiguration(split_batches=False, even_batches=True),
        step_scheduler_with_optimizer=False,
    )


def _check_tracker(name: str) -> None:
    from accelerate.tracking import LOGGER_TYPE_TO_CLASS

    known = sorted(LOGGER_TYPE_TO_CLASS)
    if name not in known:
        raise ConfigError(f"--report-to {name!r} is not an Accelerate tracker; known: {', '.join(known)}")
    from accelerate.utils import imports

    available = getattr(imports, f"is_{name}_available", None)
    if available is not None and not available():
        raise ConfigError(f"--report-to {name} needs the {name} package", fix=f"pip install {name}")


@dataclass
class Predictions:
    """Per-example results of one split, in the split's own order."""

    gold: np.ndarray
    predicted: np.ndarray
    probabilities: np.ndarray
    losses: np.ndarray


@dataclass
class StepEnd:
    epoch: int
    global_step: int
    total_steps: int
    loss: torch.Tensor
    lr: float


@dataclass
class Evaluation:
    phase: str  # "before", "step", "epoch" or "after"
    split: str
    epoch: int | None
    metrics: dict[str, Any]
    predictions: Predictions | None = None


@dataclass
class TrainingProgress:
    """Everything the loop needs to continue bit-exactly; saved with each checkpoint."""

    epoch: int = 0
    batches_done: int = 0
    global_step: int = 0
    best_loss: float = math.inf
    best_epoch: int | None = None
    bad_evals: int = 0
    stopped_early: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)
    step_history: list[dict[str, Any]] = field(default_factory=list)
    train_dynamics: list[dict[str, Any]] = field(default_factory=list)
    best_state: dict[str, torch.Tensor] | None = None

    def state_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A copy of the trained tensors: what early stopping restores and what a comparison of two trainings checks."""
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


class Engine:
    """Trains one model on one split and evaluates it on others; `evaluate` hooks each result."""

    def __init__(
        self,
        config: RunConfig,
        accelerator: Accelerator,
        model: torch.nn.Module,
        tokenizer: Any,
        splits: dict[str, EncodedTexts],
        *,
        lr: float,
        hooks: Any,
        run: Any,
        class_weights: torch.Tensor | None = None,
        checkpoint_dir: Path | None = None,
        lr_scales: dict[str, float] | None = None,
    ) -> None:
        self.config = config
        self.accelerator = accelerator
        self.hooks = hooks
        self.run = run
        self.checkpoint_dir = checkpoint_dir
        self.progress = TrainingProgress()
        acc = accelerator
        collate = PadToLongest(tokenizer)

        def loader(data: EncodedTexts, batch_size: int, shuffle: bool, accumulation: int) -> DataLoader:
            batches = LengthGroupedBatches(
                data.lengths(),
                batch_size,
                num_processes=acc.num_processes,
                accumulation=accumulation,
                shuffle=shuffle,
                seed=config.seed,
            )
            # A private generator: creating an iterator must not draw from the global RNG, or a resumed run
            # would see different dropout masks than a straight one.
            return DataLoader(
                data, batch_sampler=batches, collate_fn=collate, generator=torch.Generator().manual_seed(config.seed)
            )

        train = splits.get("train")
        hold_frozen_linears_in(model, config.mixed_precision)
        if acc.device.type == "cpu":  # CUDA's dropout draws from a fast counter-based generator already
            use_fast_dropout(model)
        optimizer = torch.optim.AdamW(
            _parameter_groups(model, lr, config.weight_decay, lr_scales or {}),
            lr=lr,
            fused=True,  # one kernel for all parameters, as the Trainer's default adamw_torch_fused
        )
        eval_loaders = {name: loader(data, config.eval_batch_size, False, 1) for name, data in splits.items()}
        train_loader = loader(train, config.batch_size, True, config.grad_accum) if train is not None else None
        prepared = acc.prepare(model, optimizer, *([train_loader] if train_loader else []), *eval_loaders.values())
        self.model, self.optimizer = prepared[0], prepared[1]
        # Only the trainable tensors: walking every frozen one for a missing gradient was 6% of a tiny LoRA
        # step. FSDP keeps `model.parameters()`, which Accelerate matches to use the sharded norm.
        self.clipped_parameters = (
            list(self.model.parameters())
            if acc.distributed_type == DistributedType.FSDP
            else [p for p in self.model.parameters() if p.requires_grad]
        )
        rest = list(prepared[2:])
        self.train_loader = rest.pop(0) if train_loader else None
        self.eval_loaders = dict(zip(eval_loaders, rest, strict=True))
        self.sizes = {name: len(data) for name, data in splits.items()}
        steps_per_epoch = math.ceil(len(self.train_loader) / config.grad_accum) if self.train_loader else 0
        self.total_steps = steps_per_epoch * config.epochs
        scheduler = get_linear_schedule_with_warmup(
            optimizer, int(config.warmup_ratio * self.total_steps), max(self.total_steps, 1)
        )
        self.scheduler = acc.prepare(scheduler)
        self.class_weights = class_weights.to(acc.device) if class_weights is not None else None
        acc.register_for_checkpointing(self.progress)

    # ---------------------------------------------------------------- evaluation
    def predict(self, split: str) -> Predictions:
        """Length-sorted batches under inference_mode; gathered, de-duplicated and put back in split order."""
        acc, model = self.accelerator, self.model
        model.eval()
        parts: list[tuple[torch.Tensor, ...]] = []
        with torch.inference_mode():
            for batch in self.eval_loaders[split]:
                index, labels = batch.pop("index"), batch.pop("labels")
                logits = model(**batch).logits.float()
                losses = F.cross_entropy(logits, labels, reduction="none")
                parts.append(acc.gather_for_metrics((index, labels, logits, losses)))
        index, labels, logits, losses = (torch.cat(t).cpu() for t in zip(*parts, strict=True))
        order = np.argsort(index.numpy(), kind="stable")
        index_sorted = index.numpy()[order]
        keep = order[np.r_[True, index_sorted[1:] != index_sorted[:-1]]]
        n = self.sizes[split]
        if len(keep) != n or not np.array_equal(index.numpy()[keep], np.arange(n)):
            raise RuntimeError(f"evaluation of {split} gathered {len(keep)} distinct examples, expected {n}")
        probabilities = torch.softmax(logits[keep], dim=-1).numpy()
        return Predictions(labels[keep].numpy(), probabilities.argmax(-1), probabilities, losses[keep].numpy())

    def evaluate(
        self, split: str, phase: str, epoch: int | None, summarize: Callable[[Predictions], dict]
    ) -> tuple[Predictions, dict[str, Any]]:
        predictions = self.predict(split)
        metrics = summarize(predictions)
        self.hooks.mikiwame_on_evaluate(run=self.run, evaluation=Evaluation(phase, split, epoch, metrics, predictions))
        return predictions, metrics

    # ---------------------------------------------------------------- training
    def train(self, summarize: Callable[[Predictions], dict], resume: str | None = None) -> TrainingProgress:
        acc, model, optimizer, scheduler, cfg = (
            self.accelerator,
            self.model,
            self.optimizer,
            self.scheduler,
            self.config,
        )
        progress = self.progress
        if resume:
            acc.load_state(resume)
        for epoch in range(progress.epoch, cfg.epochs):
            loader = self.train_loader
            if progress.batches_done:
                loader = skip_first_batches(loader, progress.batches_done)
            loader.set_epoch(epoch)
            model.train()
            loss_sum = torch.zeros((), device=acc.device)
            for batch in loader:
                with acc.accumulate(model):
                    batch.pop("index")
                    labels = batch.pop("labels")
                    logits = model(**batch).logits
                    loss = F.cross_entropy(logits.float(), labels, weight=self.class_weights)
                    acc.backward(loss)
                    if acc.sync_gradients:
                        acc.clip_grad_norm_(self.clipped_parameters, cfg.max_grad_norm)
                    optimizer.step()
                    if acc.sync_gradients:
                        scheduler.step()
                    optimizer.zero_grad()
                loss_sum += loss.detach()
                progress.batches_done += 1
                if acc.sync_gradients:
                    progress.global_step += 1
                    step = StepEnd(
                        epoch, progress.global_step, self.total_steps, loss.detach(), scheduler.get_last_lr()[0]
                    )
                    self.hooks.mikiwame_on_step_end(run=self.run, step=step)
                    if cfg.eval_every and progress.global_step % cfg.eval_every == 0:
                        self._evaluate_step(epoch, loss_sum, summarize)
                        model.train()
                    if cfg.save_every and progress.global_step % cfg.save_every == 0:
                        self.save_checkpoint()
            train_loss = acc.reduce(loss_sum, reduction="mean").item() / max(progress.batches_done, 1)
            progress.epoch, progress.batches_done = epoch + 1, 0
            if self._end_of_epoch(epoch, train_loss, summarize):
                break
        if progress.best_state is not None:
            acc.unwrap_model(model).load_state_dict(progress.best_state, strict=False)
        self.hooks.mikiwame_after_train(run=self.run)
        return progress

    def _evaluate_step(self, epoch: int, loss_sum: torch.Tensor, summarize: Callable[[Predictions], dict]) -> None:
        """`--eval-every N`: a validation point for the learning curves; early stopping stays per epoch."""
        progress, acc = self.progress, self.accelerator
        train_loss = acc.reduce(loss_sum, reduction="mean").item() / max(progress.batches_done, 1)
        record: dict[str, Any] = {
            "step": progress.global_step,
            "epoch": epoch + progress.batches_done / len(self.train_loader),
            "train_loss": train_loss,
        }
        if "validation" in self.eval_loaders:
            predictions, _ = self.evaluate("validation", "step", epoch + 1, summarize)
            record.update(
                validation_loss=float(predictions.losses.mean()),
                validation_accuracy=float((predictions.gold == predictions.predicted).mean()),
            )
        progress.step_history.append(record)

    def _end_of_epoch(self, epoch: int, train_loss: float, summarize: Callable[[Predictions], dict]) -> bool:
        """Validate, log, remember the best weights; True when early stopping ends training."""
        progress, cfg, acc = self.progress, self.config, self.accelerator
        record: dict[str, Any] = {"epoch": epoch + 1, "step": progress.global_step, "train_loss": train_loss}
        if "validation" in self.eval_loaders:
            predictions, _ = self.evaluate("validation", "epoch", epoch + 1, summarize)
            val_loss = float(predictions.losses.mean())
            record.update(
                validation_loss=val_loss, validation_accuracy=float((predictions.gold == predictions.predicted).mean())
            )
            if val_loss < progress.best_loss:
                progress.best_loss, progress.best_epoch, progress.bad_evals = val_loss, epoch + 1, 0
                progress.best_state = trainable_state(acc.unwrap_model(self.model))
            else:
                progress.bad_evals += 1
        progress.history.append(record)
        if cfg.track_train:
            train = self.predict("train")
            progress.train_dynamics.append(
                {
                    "epoch": epoch + 1,
                    "correct": (train.gold == train.predicted).astype(int).tolist(),
                    "gold_probability": train.probabilities[np.arange(len(train.gold)), train.gold].round(4).tolist(),
                }
            )
        acc.log({k: v for k, v in record.items() if k != "step"}, step=progress.global_step)
        progress.stopped_early = bool(cfg.patience and progress.bad_evals >= cfg.patience and epoch + 1 < cfg.epochs)
        if not cfg.save_every:
            self.save_checkpoint()
        return progress.stopped_early

    def save_checkpoint(self) -> None:
        """Only ever called at a sync boundary, so no half-accumulated gradient is lost."""
        if self.checkpoint_dir is None:
            return
        target = self.checkpoint_dir / f"step-{self.progress.global_step:06d}"
        self.accelerator.save_state(str(target))
        if self.accelerator.is_main_process:
            kept = sorted(self.checkpoint_dir.glob("step-*"))
            for old in kept[: -self.config.keep_checkpoints]:
                shutil.rmtree(old)
        self.accelerator.wait_for_everyone()


def _no_decay(name: str) -> bool:
    return name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name


def _parameter_groups(
    model: torch.nn.Module, lr: float, weight_decay: float, lr_scales: dict[str, float]
) -> list[dict[str, Any]]:
    """AdamW groups by weight decay and learning-rate multiplier. `lr_scales` maps a fragment of a parameter
    name to a multiplier of `lr` (the first fragment the name contains wins): pre-initialised embeddings train
    slower than the random layers around them, so a few hundred examples do not wash them out. The
    schedule scales each group's own rate."""
    groups: dict[tuple[bool, float], list[torch.nn.Parameter]] = {(False, 1.0): [], (True, 1.0): []}
    for name, p in model.named_parameters():
        if p.requires_grad:
            scale = next((s for fragment, s in lr_scales.items() if fragment in name), 1.0)
            groups.setdefault((_no_decay(name), scale), []).append(p)
    return [
        {"params": params, "weight_decay": 0.0 if no_decay else weight_decay, "lr": lr * scale}
        for (no_decay, scale), params in sorted(groups.items(), key=lambda kv: kv[0])
    ]
