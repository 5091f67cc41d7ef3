"""THE training step, evaluator and epoch loop, shared by the single-process Trainer and the Ray worker.

Nothing here knows where it runs: device, precision, the (possibly DDP-wrapped) model, the loaders
and what happens after each epoch (checkpoints, Ray reports) come in as arguments.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from gru_xnet.config import TrainingConfig
from gru_xnet.metrics import confusion_matrix, scores

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Precision:
    """Autocast settings: bf16 on CPU; on CUDA bf16 where supported, else fp16 with a GradScaler."""

    device_type: str
    dtype: torch.dtype | None

    @property
    def enabled(self) -> bool:
        return self.dtype is not None

    @property
    def needs_scaler(self) -> bool:
        return self.dtype == torch.float16

    def autocast(self) -> torch.autocast:
        return torch.autocast(self.device_type, dtype=self.dtype or torch.float32, enabled=self.enabled)

    def scaler(self) -> torch.amp.GradScaler:
        return torch.amp.GradScaler(self.device_type, enabled=self.needs_scaler)


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' picks CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"training.device={name!r} but CUDA is not available; use 'auto' or 'cpu'")
    return device


def resolve_precision(device: torch.device, use_amp: bool, amp_dtype: str = "auto") -> Precision:
    """The autocast dtype for `device` (None when AMP is off)."""
    if not use_amp:
        return Precision(device.type, None)
    if amp_dtype == "fp16" or (amp_dtype == "auto" and device.type == "cuda"
                               and not torch.cuda.is_bf16_supported()):
        if device.type != "cuda":
            raise ValueError("training.amp_dtype='fp16' needs CUDA; use 'bf16' or 'auto' on CPU")
        return Precision(device.type, torch.float16)
    return Precision(device.type, torch.bfloat16)


def make_reproducible(seed: int, config: TrainingConfig) -> None:
    """Seed numpy and torch, fix torch's intra-op threads and ask for deterministic kernels.

    The thread count comes from the config (`training.num_threads`, part of its hash), never from the
    CPUs a process happens to get, so a fold's CPU result does not depend on where it ran. On CUDA,
    `training.deterministic` also selects deterministic cuDNN/cuBLAS kernels (warning where none exists).
    """
    torch.set_num_threads(config.num_threads)
    if config.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # read when cuBLAS starts
    # torch.use_deterministic_algorithms(mode, warn_only=True) less its import of torch._inductor (1.5 CPU-s in every
    # training process; it sets the inductor's flag, which only torch.compile reads, and no path here compiles)
    torch._C._set_deterministic_algorithms(config.deterministic, warn_only=True)
    torch.backends.cudnn.deterministic = config.deterministic
    torch.backends.cudnn.benchmark = not config.deterministic
    np.random.seed(seed)
    torch.manual_seed(seed)


OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
"""`training.optimizer` -> its torch class (the names are checked in `gru_xnet.config`, without torch)."""


def make_optimizer(model: nn.Module, config: TrainingConfig) -> torch.optim.Optimizer:
    """Adam or AdamW (`training.optimizer`) with the config's learning rate, weight decay and epsilon."""
    return OPTIMIZERS[config.optimizer](model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay,
                                        eps=config.adam_eps)


def make_scheduler(optimizer: torch.optim.Optimizer, config: TrainingConfig):
    """Cosine annealing to zero over `cosine_period` epochs (0: the planned epochs), or None when `use_scheduler` is
    off."""
    if not config.use_scheduler:
        return None
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.cosine_period or config.num_epochs)


def unwrap(model: nn.Module) -> nn.Module:
    """The plain model inside a DDP wrapper (or the model itself)."""
    return getattr(model, "module", model)


def train_one_epoch(model: nn.Module, batches, optimizer: torch.optim.Optimizer, *, device: torch.device,
                    precision: Precision, scaler: torch.amp.GradScaler,
                    on_batch: Callable[[int], None] | None = None, label_smoothing: float = 0.0) -> dict[str, float]:
    """One pass over `batches` of `(x, y)`; returns mean loss (cross-entropy with `label_smoothing`) and accuracy
    (percent) over this process's batches.

    Loss and hits are summed on the device and read once at the end of the epoch: no host
    synchronisation per batch, so a non-finite loss is reported for the epoch, not the batch.
    """
    model.train()
    loss_fn = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    penalty = getattr(unwrap(model), "penalty", None)  # a model's own term of the training loss (DGCNN's norms)
    total_loss = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    seen = 0
    for x, y in batches:
        x = x.to(device, non_blocking=True)
        y = y.to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        with precision.autocast():
            logits = model(x)
        loss = loss_fn(logits.float(), y)
        if penalty is not None:
            loss = loss + penalty()
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        total_loss += loss.detach() * len(y)
        correct += (logits.argmax(1) == y).sum()
        seen += len(y)
        if on_batch is not None:
            on_batch(len(y))
    mean_loss = total_loss.item() / max(seen, 1)
    if not math.isfinite(mean_loss):
        raise FloatingPointError(f"training loss became {mean_loss} in this epoch; lower training.learning_rate "
                                 "or check the input features")
    return {"loss": mean_loss, "accuracy": 100.0 * correct.item() / max(seen, 1)}


@dataclass
class Evaluation:
    """Metrics of one pass over an evaluation loader plus every window's prediction."""

    metrics: dict
    windows: np.ndarray
    y_true: np.ndarray
    y_pred: np.ndarray
    probabilities: np.ndarray
    attention: np.ndarray | None = None  # (N, S, S) self-attention weights, when asked for
    margins: np.ndarray | None = None
    """(N, n_classes) logits of a module whose `decision` is 'margin' (a classifier deciding by its
    decision_function): what its AUC ranks; its probabilities are their softmax."""


@torch.no_grad()
def evaluate(model: nn.Module, loader, *, device: torch.device, precision: Precision, n_classes: int,
             dataset_names: Sequence[str] = (), attention: bool = False,
             subject_index: np.ndarray | None = None) -> Evaluation:
    """Loss, accuracy, balanced accuracy, macro-F1, confusion matrix and per-dataset accuracy.

    Runs the plain module (no DDP collectives), so every rank computes the same numbers and takes
    the same early-stopping decision without communicating. `attention=True` also keeps every
    window's self-attention weights (the model must have attention). `subject_index` (each window's
    subject, indexed by the window indices the loader yields) adds `subject_balanced_accuracy`. A module
    deciding by margin (`decision` 'margin') also gives its logits as `margins`.
    """
    net = unwrap(model)
    net.eval()
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    total_loss = torch.zeros((), device=device)
    by_margin = getattr(net, "decision", "probability") == "margin"
    parts = {"windows": [], "y": [], "datasets": [], "probs": [], "attention": [], "margins": []}
    for x, y, dataset, window in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with precision.autocast():
            if attention:
                logits, weights = net(x, return_attention=True)
                parts["attention"].append(weights.float())
            else:
                logits = net(x)
        logits = logits.float()
        total_loss += loss_fn(logits, y)
        parts["probs"].append(torch.softmax(logits, 1))
        if by_margin:
            parts["margins"].append(logits)
        parts["y"].append(y)
        parts["datasets"].append(torch.as_tensor(dataset, device=device))
        parts["windows"].append(np.asarray(window))
    host = lambda key, empty: torch.cat(parts[key]).cpu().numpy() if parts[key] else empty  # noqa: E731
    probs = host("probs", np.zeros((0, n_classes), np.float32))
    y_true = host("y", np.zeros(0, np.int64))
    datasets = host("datasets", np.zeros(0, np.int64))
    y_pred = probs.argmax(1)
    cm = confusion_matrix(y_true, y_pred, n_classes)
    metrics = {"loss": total_loss.item() / max(len(y_true), 1), **scores(cm), "confusion_matrix": cm.tolist(),
               "n": int(len(y_true))}
    metrics["per_dataset"] = {
        name: {**scores(confusion_matrix(y_true[datasets == i], y_pred[datasets == i], n_classes)),
               "n": int((datasets == i).sum())}
        for i, name in enumerate(dataset_names) if (datasets == i).any()}
    windows = np.concatenate(parts["windows"]) if parts["windows"] else np.zeros(0, np.int64)
    if subject_index is not None:
        metrics["subject_balanced_accuracy"] = subject_balanced_accuracy(y_true, y_pred, subject_index[windows],
                                                                         n_classes)
    return Evaluation(metrics, windows, y_true, y_pred, probs, host("attention", None),
                      host("margins", np.zeros((0, n_classes), np.float32)) if by_margin else None)


def subject_balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray, subjects: np.ndarray, n_classes: int) -> float:
    """Mean over subjects of each subject's balanced accuracy (%), what the LOSO tables lead with.

    Pooled windows would reward following each subject's class balance; subjects showing one class
    only (balanced accuracy undefined) are left out. NaN when no subject shows two classes.
    """
    per_subject = [scores(confusion_matrix(y_true[rows], y_pred[rows], n_classes))["balanced_accuracy"]
                   for subject in np.unique(subjects) for rows in [subjects == subject]]
    defined = [value for value in per_subject if math.isfinite(value)]
    return float(np.mean(defined)) if defined else float("nan")


class EarlyStopping:
    """Stops after `patience` epochs without improving the monitored validation metric."""

    def __init__(self, patience: int, mode: str = "max", min_delta: float = 0.0):
        if mode not in ("max", "min"):
            raise ValueError(f"mode={mode!r}: expected 'max' or 'min'")
        self.patience, self.mode, self.min_delta = patience, mode, min_delta
        self.best: float | None = None
        self.bad_epochs = 0

    def step(self, value: float) -> bool:
        """Record one epoch's value; True when it is the best so far."""
        better = self.best is None or (value > self.best + self.min_delta if self.mode == "max"
                                       else value < self.best - self.min_delta)
        if better:
            self.best, self.bad_epochs = value, 0
        else:
            self.bad_epochs += 1
        return better

    @property
    def should_stop(self) -> bool:
        return self.bad_epochs >= self.patience

    def state_dict(self) -> dict:
        return {"best": self.best, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.bad_epochs = state["best"], state["bad_epochs"]


def _distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def _sync_buffers(model: nn.Module) -> None:
    """Give every DDP rank rank 0's BatchNorm statistics, so all ranks validate the same model."""
    if _distributed():
        for buffer in unwrap(model).buffers():
            torch.distributed.broadcast(buffer, src=0)


def _rank0_decides(flag: bool) -> bool:
    """Rank 0's value of `flag` on every rank, so all ranks stop at the same epoch."""
    if not _distributed():
        return flag
    box = [flag]
    torch.distributed.broadcast_object_list(box, src=0)
    return bool(box[0])


@dataclass
class FitState:
    """Where a run stands: epochs done, history, the best weights and the stopping rule's memory."""

    epoch: int = 0
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    best_state: dict | None = None
    stopper: EarlyStopping | None = None
    stopped_early: bool = False
    loop_seconds: float = 0.0  # wall time spent in the epoch loop (training + validation)
    epoch_end_seconds: float = 0.0  # wall time spent in `on_epoch_end` (reports, epoch checkpoints)


def rng_state(device: torch.device) -> dict:
    """This process's torch random state (dropout draws from it): CPU, and the CUDA device in use."""
    return {"torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}


def set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch_rng"])
    if device.type == "cuda" and state.get("cuda_rng") is not None:
        torch.cuda.set_rng_state(state["cuda_rng"], device)


def snapshot(model: nn.Module, optimizer: torch.optim.Optimizer, scheduler, state: FitState) -> dict:
    """Everything `resume` needs to continue a fit after `state.epoch` epochs, bar the random state.

    Tensors and plain data only, so it loads with `torch.load(weights_only=True)`.
    """
    return {"epoch": state.epoch, "model_state": unwrap(model).state_dict(), "optimizer_state": optimizer.state_dict(),
            "scheduler_state": scheduler.state_dict() if scheduler is not None else None,
            "stopper": state.stopper.state_dict(), "history": state.history, "best_epoch": state.best_epoch,
            "best_state": state.best_state, "stopped_early": state.stopped_early, "loop_seconds": state.loop_seconds}


def resume(saved: dict, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler,
           config: TrainingConfig) -> FitState:
    """Load a `snapshot` into the model, optimizer and scheduler; the FitState to hand `fit` to continue."""
    unwrap(model).load_state_dict(saved["model_state"])
    optimizer.load_state_dict(saved["optimizer_state"])
    if scheduler is not None:
        scheduler.load_state_dict(saved["scheduler_state"])
    stopper = EarlyStopping(config.patience, "min" if config.monitor == "loss" else "max")
    stopper.load_state_dict(saved["stopper"])
    return FitState(epoch=saved["epoch"], history=list(saved["history"]), best_epoch=saved["best_epoch"],
                    best_state=saved["best_state"], stopper=stopper, stopped_early=saved["stopped_early"],
                    loop_seconds=saved.get("loop_seconds", 0.0))


def fit(model: nn.Module, loaders, optimizer: torch.optim.Optimizer, scheduler, config: TrainingConfig, *,
        device: torch.device, precision: Precision, dataset_names: Sequence[str] = (),
        subject_index: np.ndarray | None = None, state: FitState | None = None,
        on_epoch_end: Callable[[FitState, dict], None] | None = None,
        on_batch: Callable[[int], None] | None = None) -> FitState:
    """The epoch loop: train, validate, keep the best weights, stop early; resumable from `state`.

    Without validation windows nothing is chosen: every epoch runs and the last one's weights are kept (the
    stated last-epoch rule). `subject_index` (each window's subject) adds `val_subject_balanced_accuracy` to
    every epoch record.
    """
    if config.monitor == "subject_balanced_accuracy" and subject_index is None and loaders.val is not None:
        raise ValueError("training.monitor='subject_balanced_accuracy' needs each window's subject: "
                         "pass subject_index to fit")
    mode = "min" if config.monitor == "loss" else "max"
    state = state or FitState()
    if state.stopper is None:
        state.stopper = EarlyStopping(config.patience, mode)
    scaler = precision.scaler()
    started = time.perf_counter()
    while state.epoch < config.num_epochs and not state.stopped_early:
        loaders.train.set_epoch(state.epoch)
        train = train_one_epoch(model, loaders.train, optimizer, device=device, precision=precision,
                                scaler=scaler, on_batch=on_batch, label_smoothing=config.label_smoothing)
        _sync_buffers(model)
        record = {"epoch": state.epoch + 1, "train_loss": train["loss"], "train_accuracy": train["accuracy"],
                  "lr": optimizer.param_groups[0]["lr"]}
        if loaders.val is not None:
            val = evaluate(model, loaders.val, device=device, precision=precision, n_classes=loaders.n_classes,
                           dataset_names=dataset_names, subject_index=subject_index).metrics
            record.update({f"val_{k}": v for k, v in val.items() if k not in ("confusion_matrix", "per_dataset")})
            score = val[config.monitor]
        else:
            score = None  # no validation: the last epoch is the one kept
        if scheduler is not None:
            scheduler.step()
        improved = score is None or state.stopper.step(
            score if math.isfinite(score) else (-math.inf if mode == "max" else math.inf))
        if improved or state.best_state is None:
            state.best_epoch = state.epoch + 1
            state.best_state = copy.deepcopy({k: v.detach().cpu() for k, v in unwrap(model).state_dict().items()})
        state.epoch += 1
        state.history.append(record)
        state.stopped_early = _rank0_decides(config.early_stopping and loaders.val is not None
                                             and state.stopper.should_stop)
        state.loop_seconds += time.perf_counter() - started
        started = time.perf_counter()
        if on_epoch_end is not None:
            on_epoch_end(state, record)
            state.epoch_end_seconds += time.perf_counter() - started
            started = time.perf_counter()
    return state
