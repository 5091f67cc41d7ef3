"""`python -m loso.cards [NAME] [--markdown]`: the protocol cards, each with its datasets, tasks, models and deviations.

`--markdown` prints a card as docs/reproduce.md shows it. Reads only the YAML cards and the config: it answers
before torch, Ray, scipy or pandas load.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from loso.cards import CardError, card_names, load_card


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loso.cards", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"cards to show (default: all: {', '.join(card_names())})")
    parser.add_argument("--markdown", action="store_true", help="print each card as docs/reproduce.md shows it")
    args = parser.parse_args(argv)
    try:
        cards = [load_card(name) for name in args.names or card_names()]
    except CardError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for i, card in enumerate(cards):
        print(("\n" if i else "") + (card.markdown() if args.markdown else "\n".join(card.describe())))
    if not args.markdown:
        print("\nrun one: python -m loso.benchmark --card NAME --datasets ... --data-root DIR (--tasks, --models pick "
              "subsets)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
