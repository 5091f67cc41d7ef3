"""An example of your own dataset for `--dataset-module examples/my_dataset.py --datasets MYEEG`.

A dataset is one `Reader` subclass (see `gru_xnet/datasets/base.py` for the whole contract; the
built-in readers are complete examples). This one reads `MYEEG/sub-XX.npz` files holding `eeg`
(trials, 14, samples) at 128 Hz and `labels` (trials,) in {0, 1}, loaded with `allow_pickle=False`:
a data file is never trusted with code. `write_subject` lets `--synthetic` write it.
"""

from pathlib import Path

import numpy as np

from gru_xnet.datasets import DatasetError, Reader, Trial
from gru_xnet.datasets.base import check_option, natural_key, signal_problem, stimulus_confound
from gru_xnet.datasets.synthetic_signal import SubjectModel

CHANNELS = ("AF3", "F7", "F3", "FC5", "T7", "P7", "O1", "O2", "P8", "T8", "FC6", "F4", "F8", "AF4")


class MyEEGReader(Reader):
    """sub-XX.npz files; the label is stored per trial (0 low, 1 high valence)."""

    name = "MYEEG"
    channel_names = CHANNELS
    sampling_rate = 128.0
    class_names = ("low valence", "high valence")
    synthetic_trials = (6, 20)

    def __init__(self, root, *, skip_bad_trials=False, joint=False, flip_labels=False):
        super().__init__(root, skip_bad_trials=skip_bad_trials)
        self.flip_labels = self.check_options(joint, flip_labels=flip_labels)["flip_labels"]

    @classmethod
    def check_options(cls, joint=False, flip_labels=False):
        check_option("flip_labels", flip_labels, (False, True))  # set with data.dataset_options {"MYEEG": {...}}
        return {"flip_labels": flip_labels}

    @classmethod
    def looks_like(cls, folder: Path) -> bool:
        return any(p.name.startswith("sub-") and p.suffix == ".npz" for p in folder.iterdir())

    def subjects(self):
        found = sorted((p.stem[4:] for p in self.root.glob("sub-*.npz")), key=natural_key)
        if not found:
            raise DatasetError(f"MYEEG: expected sub-XX.npz files in {self.root}, found none")
        return found

    def source_files(self, subject):
        self._check_subject(subject, self.subjects())
        return [self.root / f"sub-{subject}.npz"]

    def read_subject(self, subject):
        (path,) = self.source_files(subject)
        try:
            with np.load(path, allow_pickle=False) as content:
                eeg, labels = content["eeg"], content["labels"]
        except (OSError, ValueError, KeyError) as exc:
            raise DatasetError(f"{path}: expected an npz file with arrays 'eeg' and 'labels': {exc}") from exc
        trials, skipped = [], []
        for index, (signal, label) in enumerate(zip(eeg, labels)):
            problem = signal_problem(signal, f"{path} trial {index + 1}", len(CHANNELS))
            if problem is not None:
                self._bad_trial(skipped, problem)
                continue
            trials.append(Trial(signal=signal.astype(np.float32), label=int(label) ^ int(self.flip_labels),
                                subject=subject, session="1", trial=index + 1, channel_names=CHANNELS,
                                sampling_rate=self.sampling_rate, dataset=self.name))
        return self._finish(subject, trials, skipped)

    def options(self):
        return {"flip_labels": self.flip_labels}

    def label_description(self):
        return "MYEEG stored labels: 1 high valence, 0 low" + (" (flipped)" if self.flip_labels else "")

    def stimulus_statement(self):
        return stimulus_confound("every MYEEG subject saw the same stimuli, trial k the k-th", "stimuli", "stimulus",
                                 rated=False)

    @classmethod
    def write_subject(cls, root, subject, trials, seconds, planting, seed):
        rng = np.random.default_rng([seed, 99, subject])
        model = SubjectModel.draw(rng, len(CHANNELS), planting)
        labels = np.arange(trials) % 2
        planted = rng.integers(0, 2, trials) if planting.shuffle else labels
        eeg = np.stack([model.trial(rng, CHANNELS, int(seconds * cls.sampling_rate), cls.sampling_rate,
                                    (int(level), 0)) for level in planted])
        root.mkdir(parents=True, exist_ok=True)
        np.savez(root / f"sub-{subject:02d}.npz", eeg=eeg, labels=labels)
