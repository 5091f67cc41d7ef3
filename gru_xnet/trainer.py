"""Single-process training: `Trainer(config).train()` then `.test()` (the command: `python -m gru_xnet.train`).

Subjects are split train/val/test by the config's ratios (never windows of one subject on two
sides); the best epoch on the validation subjects is kept and tested once.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gru_xnet.checkpoint import read_checkpoint, save_checkpoint
from gru_xnet.config import ConfigError, ExperimentConfig, write_text_atomic
from gru_xnet.data_loader import make_loaders
from gru_xnet.engine import (FitState, evaluate, fit, make_optimizer, make_reproducible, make_scheduler,
                             resolve_device, resolve_precision, resume, rng_state, set_rng_state, snapshot)
from gru_xnet.estimators import decision_of, fit_on_loaders, is_estimator
from gru_xnet.features import FeatureSet, build_feature_set
from gru_xnet.model import build_model, load_model, model_input, model_payload
from gru_xnet.models import model_spec
from gru_xnet.plots import plot_training_curves
from gru_xnet.results import evaluation_report
from gru_xnet.split import Split, subject_split

log = logging.getLogger(__name__)


def model_metadata(features: FeatureSet, config: ExperimentConfig) -> dict[str, Any]:
    """What a checkpoint must carry besides weights to be used on new data: labels, channels, config."""
    return {"config": config.to_dict(), "class_names": list(features.class_names),
            "channel_names": list(features.channel_names), "frequencies": features.frequencies.tolist(),
            "protocol": json.loads(json.dumps(features.protocol, default=list)),
            "synthetic": bool(features.synthetic)}


class Trainer:
    """Trains the config's model on a subject-wise split and writes the seed's outputs tree.

    A torch model goes through the shared epoch loop; a scikit-learn model is fitted once (its grid chosen on
    the validation subjects), and its `best_model.pth` holds its fitted arrays.
    """

    def __init__(self, config: ExperimentConfig, features: FeatureSet | None = None, progress: bool = False):
        config.validate()
        self.config = config
        self.features = features
        self.progress = progress
        self.output_dir = Path(config.output_dir) / config.experiment_name
        self.state: FitState | None = None
        self._ready = False

    def _setup(self) -> None:
        if self._ready:
            return
        cfg = self.config
        make_reproducible(cfg.seed, cfg.training)
        self.spec = model_spec(cfg.model.name)
        representation = self.spec.representation_of(cfg.data)
        if self.features is None:
            self.features = build_feature_set(cfg.data, representation=representation)
        self.split: Split = subject_split(self.features, cfg.data, cfg.seed)
        self.device = resolve_device(cfg.training.device)
        self.loaders = make_loaders(self.features, self.split, cfg.data, batch_size=cfg.training.batch_size,
                                    seed=cfg.seed, device=self.device)
        self.model = build_model(cfg.model, self.loaders.input_shape, self.loaders.n_classes, self.spec,
                                 **model_input(self.features))
        self.record = self.spec.record(cfg.model, self.features.representation, **model_input(self.features),
                                       decision=decision_of(self.model))
        self.fitted_estimator = is_estimator(self.model)
        self.precision = resolve_precision(self.device, cfg.training.use_amp and not self.fitted_estimator,
                                           cfg.training.amp_dtype)
        if not self.fitted_estimator:
            self.model = self.model.to(self.device)
            self.optimizer = make_optimizer(self.model, cfg.training)
            self.scheduler = make_scheduler(self.optimizer, cfg.training)
        for d in ("checkpoints", "figures", "logs"):
            (self.output_dir / d).mkdir(parents=True, exist_ok=True)
        cfg.save(self.output_dir / "config.json")
        self._ready = True
        names = lambda ids: [str(self.features.subjects[i]) for i in ids]  # noqa: E731
        log.info("%s data; train subjects %s, val %s, test %s; device %s, autocast %s; model %s",
                 "SYNTHETIC" if self.features.synthetic else "real", names(self.split.train),
                 names(self.split.val), names(self.split.test), self.device, self.precision.dtype,
                 self.spec.input_statement(cfg.model, self.loaders.input_shape, self.features.representation))

    def _checkpoint(self, state: FitState, *, full: bool) -> dict[str, Any]:
        payload = {**model_metadata(self.features, self.config),
                   **model_payload(self.model, self.record, self.loaders.input_shape, self.loaders.n_classes),
                   "normalizer": {"mean": torch.from_numpy(self.loaders.normalizer.mean),
                                  "std": torch.from_numpy(self.loaders.normalizer.std)},
                   "epoch": state.epoch}
        if self.fitted_estimator:
            return payload
        if not full:
            return {**payload, "model_state": state.best_state, "best_epoch": state.best_epoch}
        split = [list(self.split.train), list(self.split.val), list(self.split.test)]
        return {**payload, **snapshot(self.model, self.optimizer, self.scheduler, state), **rng_state(self.device),
                "split": split}

    def _on_epoch_end(self, state: FitState, record: dict) -> None:
        ckpt_dir = self.output_dir / "checkpoints"
        save_checkpoint(ckpt_dir / f"checkpoint_epoch_{state.epoch}.pth", self._checkpoint(state, full=True))
        keep = self.config.training.keep_last_checkpoints
        saved = self._epoch_checkpoints()
        for _, old in saved[: max(0, len(saved) - keep)]:
            old.unlink(missing_ok=True)
        if state.best_epoch == state.epoch:
            save_checkpoint(ckpt_dir / "best_model.pth", self._checkpoint(state, full=False))
        write_text_atomic(self.output_dir / "training_history.json", json.dumps(state.history, indent=2))
        val = (f"val_loss {record['val_loss']:.4f} val_acc {record['val_accuracy']:.2f}%"
               if "val_accuracy" in record else "no validation subjects")
        log.info("epoch %d/%d  loss %.4f  acc %.2f%%  %s  lr %.2e%s", record["epoch"],
                 self.config.training.num_epochs, record["train_loss"], record["train_accuracy"], val,
                 record["lr"], "  (best)" if state.best_epoch == state.epoch else "")

    def _resume_state(self, path: Path) -> FitState:
        ckpt = read_checkpoint(path)
        if ExperimentConfig.from_dict(ckpt["config"]).fingerprint() != self.config.fingerprint():
            raise ConfigError(f"cannot resume from {path}: it was written with a different config")
        if ckpt.get("split") != [list(self.split.train), list(self.split.val), list(self.split.test)]:
            raise ConfigError(f"cannot resume from {path}: its subject split differs from this data")
        state = resume(ckpt, self.model, self.optimizer, self.scheduler, self.config.training)
        set_rng_state(ckpt, self.device)
        log.info("resuming from %s (epoch %d done)", path, ckpt["epoch"])
        return state

    def _epoch_checkpoints(self) -> list[tuple[int, Path]]:
        """(epoch, path) of every `checkpoint_epoch_*.pth`, oldest first."""
        return sorted((int(m.group(1)), p) for p in (self.output_dir / "checkpoints").glob("checkpoint_epoch_*.pth")
                      if (m := re.fullmatch(r"checkpoint_epoch_(\d+)\.pth", p.name)))

    def latest_checkpoint(self) -> Path | None:
        """The newest `checkpoint_epoch_*.pth` of this experiment, if any."""
        saved = self._epoch_checkpoints()
        return saved[-1][1] if saved else None

    def _fit_estimator(self) -> list[dict]:
        """Fit a scikit-learn model (grid on the validation subjects, refit on training + validation); save it."""
        fit = fit_on_loaders(self.model, self.spec.grid, self.loaders, self.features.subject_index)
        self.model, self.state = fit.estimator, FitState(history=fit.history)
        log.info("fitted %s%s", self.record["name"], f" with {fit.chosen} (chosen on the validation subjects"
                 + (", tied with other grid points" if fit.tied else "") + ")" if fit.chosen else "")
        save_checkpoint(self.output_dir / "checkpoints" / "best_model.pth", self._checkpoint(self.state, full=False))
        write_text_atomic(self.output_dir / "training_history.json", json.dumps(fit.history, indent=2))
        return fit.history

    def train(self, resume: bool | str | Path = False) -> list[dict]:
        """Run the epochs (optionally continuing from a checkpoint); returns the per-epoch history.

        A scikit-learn model has no epochs: it is fitted once and `resume` does not apply.
        """
        self._setup()
        if self.fitted_estimator:
            return self._fit_estimator()
        handler = logging.FileHandler(self.output_dir / "logs" / "train.log")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        library_log = logging.getLogger("gru_xnet")
        previous_level = library_log.level
        if library_log.getEffectiveLevel() > logging.INFO:  # the log file records epochs even if the caller is quiet
            library_log.setLevel(logging.INFO)
        library_log.addHandler(handler)
        try:
            state = None
            if resume:
                path = self.latest_checkpoint() if resume is True else Path(resume)
                state = self._resume_state(path) if path else None
                if path is None:
                    log.info("no checkpoint to resume in %s; starting fresh", self.output_dir / "checkpoints")
            bar = None
            if self.progress:
                from tqdm.auto import tqdm
                bar = tqdm(total=len(self.loaders.train), unit="win", leave=False, file=sys.stderr)

            def on_batch(n: int) -> None:
                bar.update(n)

            def on_epoch_end(st: FitState, record: dict) -> None:
                if bar is not None:
                    bar.clear()
                    bar.reset()
                self._on_epoch_end(st, record)

            self.state = fit(self.model, self.loaders, self.optimizer, self.scheduler, self.config.training,
                             device=self.device, precision=self.precision, dataset_names=self.features.datasets,
                             subject_index=self.features.subject_index, state=state, on_epoch_end=on_epoch_end,
                             on_batch=on_batch if bar else None)
            if bar is not None:
                bar.close()
            plot_training_curves(self.state.history, self.output_dir / "figures" / "training_curves.png",
                                 title=f"{self.config.experiment_name}"
                                       f"{' (SYNTHETIC data)' if self.features.synthetic else ''}")
            return self.state.history
        finally:
            library_log.removeHandler(handler)
            library_log.setLevel(previous_level)
            handler.close()

    def test(self) -> dict[str, Any]:
        """Evaluate the best epoch's weights on the test subjects; writes test_results.json."""
        self._setup()
        if self.loaders.test is None:
            raise ValueError("no test subjects: data.test_ratio is 0")
        best_path = self.output_dir / "checkpoints" / "best_model.pth"
        if self.fitted_estimator:
            if self.state is None:
                self.model = load_model(best_path)
        else:
            self.model.load_state_dict(self.state.best_state if self.state else read_checkpoint(best_path)["model_state"])
        evaluation = evaluate(self.model, self.loaders.test, device=self.device, precision=self.precision,
                              n_classes=self.loaders.n_classes, dataset_names=self.features.datasets)
        results = evaluation_report(evaluation, self.features, np.concatenate(
            [self.split.windows(self.features, "train"), self.split.windows(self.features, "val")]))
        results["test_subjects"] = [str(self.features.subjects[i]) for i in self.split.test]
        results["best_epoch"] = self.state.best_epoch if self.state else None
        results["model"] = self.record
        if results["collapse"]:
            log.warning("WARNING: %s", results["collapse"])
        write_text_atomic(self.output_dir / "test_results.json", json.dumps(results, indent=2))
        return results
