#!/usr/bin/env bash
# The figures and the sample table of the docs, from real runs of the demo's synthetic data (not run by CI:
# about 20 minutes on 2 cores). gru_xnet and de_logreg, each with a 9-replicate permutation null, and their
# paired comparison; copies the plots to docs/img/ and the demo's per-dataset printout to docs/img/demo_tables.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
out=${1:-outputs/docs_figures}
run() { .venv/bin/python -m loso.run --synthetic --datasets DEAP SEEDIV --resume --permutations 9 "$@"; }
mkdir -p "$out"
run --output "$out/gru_xnet" > "$out/gru_xnet.log" 2>&1 || { tail -20 "$out/gru_xnet.log"; exit 1; }
run --model de_logreg --output "$out/de_logreg" > /dev/null 2>&1
.venv/bin/python -m loso.compare "$out/de_logreg" "$out/gru_xnet" --output "$out/comparison" > /dev/null
mkdir -p docs/img
cp "$out/gru_xnet/figures/per_subject_accuracy.png" docs/img/per_subject_accuracy.png
cp "$out/gru_xnet/figures/permutation_null.png" docs/img/permutation_null.png
cp "$out/comparison/figures/subject_lines.png" docs/img/comparison.png
sed -n '/^Per dataset/,/^$/p' "$out/gru_xnet.log" > docs/img/demo_tables.txt
echo "docs/img/: $(ls docs/img | tr '\n' ' ')"
