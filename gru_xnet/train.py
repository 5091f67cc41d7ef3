"""`python -m gru_xnet.train`: the config's model trained in this one process, then tested once (`gru_xnet.trainer`).

Subjects are split train/val/test by the config's ratios (never windows of one subject on two
sides); the best epoch on the validation subjects is kept and tested once. Every option and the
config are checked before torch loads.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Sequence

from gru_xnet.config import ConfigError, apply_overrides, resolve_config
from gru_xnet.datasets.registry import add_dataset_module_argument, register_dataset_modules
from gru_xnet.models import model_spec

log = logging.getLogger(__name__)


def _parse(argv: Sequence[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(prog="python -m gru_xnet.train", description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="quick", help="'quick', 'full' or a JSON config file")
    parser.add_argument("--datasets", nargs="+", help="registered dataset names, e.g. DEAP SEED SEEDIV")
    add_dataset_module_argument(parser)
    parser.add_argument("--model", help="a registered model name, path/to/file.py:function or package.module:function "
                                        "(default: the config's model.name, gru_xnet)")
    parser.add_argument("--data-root", help="folder holding the dataset folders (or one dataset's folder)")
    parser.add_argument("--synthetic", action="store_true",
                        help="generate small synthetic datasets in the real formats and train on them")
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint_epoch_*.pth")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser.parse_known_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args, extra = _parse(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    from gru_xnet.datasets.synthetic import synthetic_data_for
    try:
        register_dataset_modules(args.dataset_module)
        config = resolve_config(args.config)
        if args.model:
            config.set_option("model.name", args.model)
        if args.datasets:
            config.set_option("data.datasets", json.dumps(args.datasets))
        if args.data_root:
            config.data.data_root = args.data_root
        apply_overrides(config, extra)
        model_spec(config.model.name).representation_of(config.data)
        if args.synthetic:
            config.data.data_root = str(synthetic_data_for(config.data, Path(config.output_dir) / "synthetic_data"))
        from gru_xnet.trainer import Trainer  # torch loads here, after every check

        trainer = Trainer(config, progress=True)
        trainer.train(resume=args.resume)
        results = trainer.test()
    except (ConfigError, ValueError, OSError) as exc:
        log.error("error: %s", exc)
        return 2
    tag = " on SYNTHETIC data" if results["synthetic"] else ""
    print(f"\nTest accuracy{tag}: {results['accuracy']:.2f}%  balanced {results['balanced_accuracy']:.2f}%  "
          f"macro-F1 {results['macro_f1']:.2f}%  (subjects {', '.join(results['test_subjects'])})")
    for name, m in results["per_dataset"].items():
        print(f"  {name}: {m['accuracy']:.2f}% over {m['n']} windows")
    if results["collapse"]:
        print(f"WARNING: {results['collapse']}")
    print(f"Outputs in {trainer.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
