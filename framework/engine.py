"""The training and evaluation loop on Accelerate, kept readable top to bottom like accelerate's
`examples/nlp_example.py`. Plugins see it only through hook calls at clear moments."""

from __future__ import annotations

import math
import shutil
import sys
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

from . import checkpoint
from .batching import EncodedTexts, LengthGroupedBatches, PadToLongest
from .checkpoint import Identity, process_file
from .classifier import TextClassifier
from .config import RunConfig
from .dropout import use_fast_dropout
from .errors import ConfigError, RunDirectoryError, TrainingDiverged
from .metrics import mean_estimate
from .precision import hold_frozen_linears_in
from .task import SPLITS, TaskData


def make_accelerator(config: RunConfig, project_dir: Path | None = None, *, cpu: bool = False) -> Accelerator:
    """Refuses the precision settings Accelerate would silently ignore or that the hardware lacks; `cpu` keeps
    it off a GPU that is present (`mikiwame analyze --device cpu`)."""
    cuda = torch.cuda.is_available() and not cpu
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
        cpu=cpu,
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
    kept_epoch: int | None = None  # the epoch whose weights the run saved: the best one, or the last
    bad_evals: int = 0
    stopped_early: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)
    step_history: list[dict[str, Any]] = field(default_factory=list)
    train_dynamics: list[dict[str, Any]] = field(default_factory=list)
    best_state: dict[str, torch.Tensor] | None = None
    best_losses: list[float] | None = None  # per validation text at the best epoch: the paired rise after it

    def to_json(self) -> dict[str, Any]:
        """Everything but the best weights (saved as tensors); an infinite best loss (none yet) as null."""
        state = {k: v for k, v in self.__dict__.items() if k != "best_state"}
        state["best_loss"] = checkpoint.finite_or_none(self.best_loss)
        return state

    def load_json(self, state: dict[str, Any], best_state: dict[str, torch.Tensor] | None) -> None:
        self.__dict__.update(state)
        self.best_loss = math.inf if state["best_loss"] is None else state["best_loss"]
        self.best_state = best_state


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A copy of the trained tensors: what early stopping restores and what a comparison of two trainings checks."""
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def length_grouped_loader(
    data: EncodedTexts,
    tokenizer: Any,
    batch_size: int,
    num_processes: int,
    *,
    shuffle: bool,
    accumulation: int = 1,
    seed: int = 0,
) -> DataLoader:
    """The engine's loader: length-grouped batches padded to their longest text. Unshuffled (evaluation), the
    batches are the length-sorted texts cut in order, the same on any number of processes, so a re-prediction
    of a split (framework/predict.py) batches, pads and therefore computes exactly as the run's evaluation."""
    batches = LengthGroupedBatches(
        data.lengths(), batch_size, num_processes=num_processes, accumulation=accumulation, shuffle=shuffle, seed=seed
    )
    # A private generator: creating an iterator must not draw from the global RNG, or a resumed run would see
    # different dropout masks than a straight one.
    return DataLoader(
        data, batch_sampler=batches, collate_fn=PadToLongest(tokenizer), generator=torch.Generator().manual_seed(seed)
    )


def predict_batches(accelerator: Accelerator, model: Any, loader: DataLoader, n: int, split: str) -> Predictions:
    """Length-sorted batches under inference_mode; gathered, de-duplicated and put back in split order."""
    acc = accelerator
    model.eval()
    parts: list[tuple[torch.Tensor, ...]] = []
    with torch.inference_mode():
        for batch in loader:
            index, labels = batch.pop("index"), batch.pop("labels")
            logits = model(**batch).logits.float()
            losses = F.cross_entropy(logits, labels, reduction="none")
            # Not gather_for_metrics: its cut of the last batch assumes Accelerate's own padding; every batch
            # here is full (LengthGroupedBatches) and duplicates are dropped by index below.
            parts.append(acc.gather((index, labels, logits, losses)))
    index, labels, logits, losses = (torch.cat(t).cpu() for t in zip(*parts, strict=True))
    order = np.argsort(index.numpy(), kind="stable")
    index_sorted = index.numpy()[order]
    keep = order[np.r_[True, index_sorted[1:] != index_sorted[:-1]]]
    if len(keep) != n or not np.array_equal(index.numpy()[keep], np.arange(n)):
        raise RuntimeError(f"evaluation of {split} gathered {len(keep)} distinct examples, expected {n}")
    probabilities = torch.softmax(logits[keep], dim=-1).numpy()
    return Predictions(labels[keep].numpy(), probabilities.argmax(-1), probabilities, losses[keep].numpy())


@dataclass
class Fitted:
    """What `Engine.fit` hands back: evaluations before and after, every split's predictions, the training."""

    before: dict[str, dict[str, Any]]
    after: dict[str, dict[str, Any]]
    predictions: dict[str, Predictions]
    progress: TrainingProgress
    before_predictions: dict[str, Predictions] = field(default_factory=dict)  # what the paired before/after test reads


class Engine:
    """Trains one model on one split and evaluates it on others; every engine moment is a hook call made here
    (`before_train`, `on_step_end`, `on_evaluate`, `after_train`)."""

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
        identity: Identity | None = None,
        lr_scales: dict[str, float] | None = None,
    ) -> None:
        self.config = config
        self.accelerator = accelerator
        self.hooks = hooks
        self.run = run
        self.checkpoint_dir = checkpoint_dir
        self.identity = identity
        self.progress = TrainingProgress()
        acc = accelerator
        hold_frozen_linears_in(model, acc.mixed_precision)  # the accelerator's, as the predictor reads it
        if acc.device.type == "cpu":  # CUDA's dropout draws from a fast counter-based generator already
            use_fast_dropout(model)
        optimizer = torch.optim.AdamW(
            _parameter_groups(model, lr, config.weight_decay, lr_scales or {}),
            lr=lr,
            fused=True,  # one kernel for all parameters, as the Trainer's default adamw_torch_fused
        )
        self._prepare(model, optimizer, tokenizer, splits)
        self.class_weights = class_weights.to(acc.device) if class_weights is not None else None
        self.last_finite_loss: tuple[int, float] | None = None
        if acc.distributed_type == DistributedType.FSDP and checkpoint_dir is not None:
            self._refuse_fsdp_checkpoints()

    def _prepare(
        self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, tokenizer: Any, splits: dict[str, EncodedTexts]
    ) -> None:
        """Loaders, the model and optimizer on the accelerator, and the schedule over the whole training."""
        acc, config = self.accelerator, self.config

        def loader(data: EncodedTexts, batch_size: int, shuffle: bool, accumulation: int) -> DataLoader:
            return length_grouped_loader(
                data, tokenizer, batch_size, acc.num_processes, shuffle=shuffle, accumulation=accumulation,
                seed=config.seed,
            )  # fmt: skip

        train = splits.get("train")
        eval_loaders = {name: loader(data, config.eval_batch_size, False, 1) for name, data in splits.items()}
        train_loader = loader(train, config.batch_size, True, config.grad_accum) if train is not None else None
        loaders = [*([train_loader] if train_loader else []), *eval_loaders.values()]
        # Our sampler, kept: on N>1 processes Accelerate wraps it in a sharding sampler that does not pass
        # `set_epoch` on, and every epoch would repeat the first epoch's order.
        self.train_batches = train_loader.batch_sampler if train_loader else None
        prepared = acc.prepare(*loaders)
        prepared_loaders = [prepared] if len(loaders) == 1 else list(prepared)
        self.train_loader = prepared_loaders.pop(0) if train_loader else None
        self.eval_loaders = dict(zip(eval_loaders, prepared_loaders, strict=True))
        self.sizes = {name: len(data) for name, data in splits.items()}
        steps_per_epoch = math.ceil(len(self.train_loader) / config.grad_accum) if self.train_loader else 0
        self.total_steps = steps_per_epoch * config.epochs
        # The schedule is built before Accelerate wraps the optimizer: built after, the fp16 grad scaler's
        # per-step patch of `optimizer.step` restores the step from before the schedule wrapped it, and torch
        # warns at every fp16 run that `optimizer.step()` was overridden (harmless, but it reads as a bug).
        scheduler = get_linear_schedule_with_warmup(
            optimizer, int(config.warmup_ratio * self.total_steps), max(self.total_steps, 1)
        )
        self.model, self.optimizer, self.scheduler = acc.prepare(model, optimizer, scheduler)
        # Only the trainable tensors: walking every frozen one for a missing gradient was 6% of a small adapter
        # step. FSDP keeps `model.parameters()`, which Accelerate matches to use the sharded norm.
        self.clipped_parameters = (
            list(self.model.parameters())
            if acc.distributed_type == DistributedType.FSDP
            else [p for p in self.model.parameters() if p.requires_grad]
        )

    def _refuse_fsdp_checkpoints(self) -> None:
        """Sharded parameters and optimizer states are not what framework/checkpoint.py writes."""
        if self.config.save_every or self.config.resume:
            raise ConfigError(
                "--save-every and --resume are not supported under FSDP",
                fix="checkpoint with DDP (accelerate launch --multi_gpu) or train without them",
            )
        self.checkpoint_dir = None
        if self.accelerator.is_main_process:
            print("mikiwame: under FSDP this run writes no checkpoints (docs/reliability.md)", file=sys.stderr)

    # ---------------------------------------------------------------- the whole fit
    def fit(
        self,
        summarize: Callable[[Predictions], dict],
        summarize_quickly: Callable[[Predictions], dict],
        resume: Path | str | None = None,
    ) -> Fitted:
        """`before_train`, the evaluation before fine-tuning, training (`summarize_quickly`: per-epoch figures
        without intervals), the evaluation after, and the predictions of every split."""
        self.hooks.mikiwame_before_train(run=self.run)
        evaluated: list[str] = [s for s in ("validation", "test") if s in self.eval_loaders]
        before_predictions, before = {}, {}
        for s in evaluated:
            before_predictions[s], before[s] = self.evaluate(s, "before", None, summarize)
        progress = self.train(summarize_quickly, resume=resume)
        after: dict[str, dict[str, Any]] = {}
        predictions: dict[str, Predictions] = {}
        for split in self.eval_loaders:
            if split in evaluated:
                predictions[split], after[split] = self.evaluate(split, "after", None, summarize)
            else:
                predictions[split] = self.predict(split)
        return Fitted(before, after, predictions, progress, before_predictions)

    # ---------------------------------------------------------------- evaluation
    def predict(self, split: str) -> Predictions:
        return predict_batches(self.accelerator, self.model, self.eval_loaders[split], self.sizes[split], split)

    def evaluate(
        self, split: str, phase: str, epoch: int | None, summarize: Callable[[Predictions], dict]
    ) -> tuple[Predictions, dict[str, Any]]:
        predictions = self.predict(split)
        metrics = summarize(predictions)
        self.hooks.mikiwame_on_evaluate(run=self.run, evaluation=Evaluation(phase, split, epoch, metrics, predictions))
        return predictions, metrics

    # ---------------------------------------------------------------- training
    def train(self, summarize: Callable[[Predictions], dict], resume: Path | str | None = None) -> TrainingProgress:
        acc, model, optimizer, scheduler, cfg = (
            self.accelerator,
            self.model,
            self.optimizer,
            self.scheduler,
            self.config,
        )
        progress = self.progress
        if self.train_loader is None:
            raise ConfigError("the task has no training split to fine-tune on", where="--task")
        train_loader = self.train_loader
        loss_sum = torch.zeros((), device=acc.device)
        if resume:
            loss_sum = self.load_checkpoint(Path(resume))
        for epoch in range(progress.epoch, cfg.epochs):
            # The sampler's epoch is set before skipping: the skipping loader does not pass it on.
            loader = train_loader
            loader.set_epoch(epoch)
            if isinstance(self.train_batches, LengthGroupedBatches):
                self.train_batches.set_epoch(epoch)
            if progress.batches_done:
                loader = skip_first_batches(loader, progress.batches_done)
                loader.set_epoch(epoch)
            model.train()
            for batch in loader:
                with acc.accumulate(model):
                    batch.pop("index")
                    labels = batch.pop("labels")
                    logits = model(**batch).logits
                    loss = F.cross_entropy(
                        logits.float(), labels, weight=self.class_weights, label_smoothing=cfg.label_smoothing
                    )
                    for extra in self.hooks.mikiwame_training_loss(
                        run=self.run, model=model, inputs=batch, logits=logits
                    ):
                        loss = loss + extra
                    self._check_finite(loss)
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
                        self.save_checkpoint(loss_sum)
            train_loss = acc.reduce(loss_sum, reduction="mean").item() / max(progress.batches_done, 1)
            progress.epoch, progress.batches_done = epoch + 1, 0
            loss_sum = torch.zeros((), device=acc.device)
            stop = self._end_of_epoch(epoch, train_loss, summarize)
            if not cfg.save_every:
                self.save_checkpoint(loss_sum)
            if stop:
                break
        if progress.best_state is not None and cfg.restores_best:
            acc.unwrap_model(model).load_state_dict(progress.best_state, strict=False)
            progress.kept_epoch = progress.best_epoch
        else:
            progress.kept_epoch = progress.epoch or None
        self.hooks.mikiwame_after_train(run=self.run)
        return progress

    def _evaluate_step(self, epoch: int, loss_sum: torch.Tensor, summarize: Callable[[Predictions], dict]) -> None:
        """`--eval-every N`: a validation point for the learning curves; early stopping stays per epoch."""
        progress, acc = self.progress, self.accelerator
        train_loss = acc.reduce(loss_sum, reduction="mean").item() / max(progress.batches_done, 1)
        record: dict[str, Any] = {
            "step": progress.global_step,
            "epoch": epoch + progress.batches_done / len(self.train_loader or [None]),
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
                progress.best_losses = predictions.losses.tolist()
            else:
                progress.bad_evals += 1
                if progress.best_losses is not None:  # paired over the same texts: what over-fitting is judged by
                    rise = predictions.losses - np.asarray(progress.best_losses)
                    record["validation_loss_rise"] = mean_estimate(rise, cfg.seed).to_dict()
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
        return progress.stopped_early

    def _check_finite(self, loss: torch.Tensor) -> None:
        """Stop at the first non-finite loss: every later step would only spread NaN through the weights. The
        mean over processes, so that all of them stop at the same step."""
        value = float(self.accelerator.reduce(loss.detach(), reduction="mean"))
        step = self.progress.global_step + 1
        if math.isfinite(value):
            self.last_finite_loss = (step, value)
            return
        last = (
            f"the last finite loss was {self.last_finite_loss[1]:.4g} at step {self.last_finite_loss[0]}"
            if self.last_finite_loss
            else "no step had a finite loss"
        )
        lr = self.scheduler.get_last_lr()[0]
        raise TrainingDiverged(
            f"training diverged: the loss is {value} at optimizer step {step}; {last}. The likely cause is a "
            f"learning rate too high for this model (this step's: {lr:.3g}) or a gradient clipping that does not "
            f"bound the update (--max-grad-norm {self.config.max_grad_norm})",
            fix="lower --lr (e.g. by 10x) or --max-grad-norm, or use --mixed-precision no",
        )

    # ---------------------------------------------------------------- checkpoints
    def save_checkpoint(self, loss_sum: torch.Tensor) -> None:
        """Only ever called at a sync boundary, so no half-accumulated gradient is lost. Written under a hidden
        name and renamed when complete (framework/checkpoint.py)."""
        if self.checkpoint_dir is None:
            return
        acc, progress = self.accelerator, self.progress
        target = self.checkpoint_dir / f"{checkpoint.PREFIX}{progress.global_step:06d}"
        staging = checkpoint.staging_dir(target)
        if acc.is_main_process:
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
        acc.wait_for_everyone()
        info, rng = checkpoint.rng_state()
        checkpoint.save_tensors(staging / process_file(acc.process_index, "safetensors"), {**rng, "loss_sum": loss_sum})
        checkpoint.write_json(staging / process_file(acc.process_index, "json"), {**info, "accelerate_step": acc.step})
        if acc.is_main_process:
            groups, tensors = checkpoint.optimizer_state(self.optimizer)
            tensors.update({f"model.{n}": t for n, t in trainable_state(acc.unwrap_model(self.model)).items()})
            tensors.update({f"best.{n}": t for n, t in (progress.best_state or {}).items()})
            checkpoint.save_tensors(staging / checkpoint.TENSORS, tensors)
        acc.wait_for_everyone()
        if acc.is_main_process:
            state = {
                "identity": self.identity.__dict__ if self.identity else None,
                "progress": progress.to_json(),
                "optimizer": groups,
                "scheduler": self.scheduler.state_dict(),
                "scaler": acc.scaler.state_dict() if acc.scaler is not None else None,
            }
            checkpoint.finish(staging, target, state)
            kept = sorted(self.checkpoint_dir.glob(f"{checkpoint.PREFIX}*"))
            for old in kept[: -self.config.keep_checkpoints]:
                shutil.rmtree(old)
        acc.wait_for_everyone()

    def load_checkpoint(self, path: Path) -> torch.Tensor:
        """Restore everything `save_checkpoint` wrote; return this process's running loss sum of the epoch."""
        acc = self.accelerator
        state, tensors, own = checkpoint.read(path, acc.process_index)
        refusal = self.identity.refusal(state["identity"] or {}) if self.identity else None
        if refusal:
            raise RunDirectoryError(
                f"checkpoint {path} cannot be resumed by this run: {refusal}",
                where="--resume",
                fix="resume with the recipe and options of the run that wrote it (its config.json)",
            )
        model = acc.unwrap_model(self.model)
        trained = {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}
        missing = set(trainable_state(model)) - set(trained)
        if missing:
            raise RunDirectoryError(
                f"checkpoint {path} lacks {len(missing)} of this model's trained tensors (e.g. {min(missing)})",
                where="--resume",
                fix="resume with the model and PEFT method of the run that wrote it",
            )
        model.load_state_dict(trained, strict=False)
        checkpoint.load_optimizer_state(self.optimizer, state["optimizer"], tensors)
        self.scheduler.load_state_dict(state["scheduler"])
        if acc.scaler is not None and state["scaler"] is not None:
            acc.scaler.load_state_dict(state["scaler"])
        best = {k.removeprefix("best."): v.to(acc.device) for k, v in tensors.items() if k.startswith("best.")}
        self.progress.load_json(state["progress"], best or None)
        checkpoint.set_rng_state(own, tensors)
        acc.step = own["accelerate_step"]
        return tensors["loss_sum"].to(acc.device)


def fit_classifier(
    classifier: TextClassifier, data: TaskData, hooks: Any, run: Any, summarize: Callable[[Predictions], dict]
) -> Fitted:
    """The engine moments of a classifier the engine does not train: the run's model information, `before_train`,
    its fit (the model information then says what fitting learned), the evaluation after of every held-out split,
    `after_train`."""
    run.model_info = classifier.describe()
    hooks.mikiwame_before_train(run=run)
    train = data.split("train")
    classifier.fit([e.text for e in train], [data.label2id[e.label] for e in train])
    run.model_info = classifier.describe()
    predictions: dict[str, Predictions] = {}
    after: dict[str, dict[str, Any]] = {}
    for split in SPLITS:
        examples = data.split(split)
        if not examples:
            continue
        probabilities = np.asarray(classifier.predict_proba([e.text for e in examples]), dtype=np.float64)
        gold = np.asarray([data.label2id[e.label] for e in examples])
        losses = -np.log(np.clip(probabilities[np.arange(len(gold)), gold], 1e-12, None))
        predictions[split] = Predictions(gold, probabilities.argmax(-1), probabilities, losses)
        if split != "train":
            after[split] = summarize(predictions[split])
            hooks.mikiwame_on_evaluate(run=run, evaluation=Evaluation("after", split, None, after[split]))
    hooks.mikiwame_after_train(run=run)
    return Fitted({}, after, predictions, TrainingProgress())


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
