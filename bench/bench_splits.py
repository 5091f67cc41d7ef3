"""What each split measures: one model under `loso`, `leave-stimulus-out` and `within-subject` on three synthetic
signals, the emotion planted in band power (`band`) or in time order (`temporal`), or no emotion at all but a
pattern per stimulus shared by every subject, with labels fixed per stimulus (`stimulus`).

    python bench/bench_splits.py [--subjects 6 --epochs 12 --model gru_xnet --cores 2] [--keep]

On the stimulus signal a model can score only by recognising stimuli: `loso` lets it (the test subject saw the
training subjects' clips), `leave-stimulus-out` does not, so there it must sit at chance. Prints a Markdown table
of balanced accuracy (window level, %, mean ± SD over subjects) per signal and split.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os

from bench_models import config_for, loso, score
from gru_xnet.datasets import write_synthetic
from gru_xnet.features import build_feature_set
from gru_xnet.models import MODELS
from scratch import add_keep_argument, scratch_dir

SIGNALS = ("band", "temporal", "stimulus")
SPLITS = ("loso", "leave-stimulus-out", "within-subject")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--model", default="gru_xnet", choices=list(MODELS))
    parser.add_argument("--cores", type=int, default=os.cpu_count())
    add_keep_argument(parser)
    args = parser.parse_args()
    with scratch_dir("bench_splits_", args.keep) as tmp:
        for signal in SIGNALS:  # 8 trials (stimuli) of 8 s per subject: 16 windows of 4 s
            write_synthetic(tmp / signal, ["DEAP"], args.subjects, seconds=8.0, signal=signal)
            config = config_for(args.model, tmp / signal, tmp, args.epochs)
            build_feature_set(config.data, representation=MODELS[args.model].representation_of(config.data))
        with concurrent.futures.ThreadPoolExecutor(args.cores) as pool:
            runs = {(signal, split): pool.submit(loso, config_for(args.model, tmp / signal, tmp, args.epochs),
                                                 tmp / f"{signal}-{split}", "--split", split)
                    for signal in SIGNALS for split in SPLITS}
            results = {key: future.result()[1] for key, future in runs.items()}
    print(f"## Splits on synthetic DEAP: {args.subjects} subjects x 8 stimuli, model {args.model}, quick preset, "
          f"{args.epochs} epochs; balanced accuracy (%, window level) mean ± SD over subjects, chance 50\n")
    print("| signal | " + " | ".join(SPLITS) + " |\n|---|" + "---|" * len(SPLITS))
    for signal in SIGNALS:
        print(f"| {signal} | " + " | ".join(score(results[(signal, split)]) for split in SPLITS) + " |")


if __name__ == "__main__":
    main()
