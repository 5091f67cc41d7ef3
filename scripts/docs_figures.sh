#!/usr/bin/env bash
# The figures and the sample table of the docs, from real runs of the demo's synthetic data (not run by CI:
# about 25 minutes on 2 cores). The demo itself (its per-dataset printout replaces README.md's sample), then the
# same folder resumed with a 9-replicate permutation null, de_logreg likewise, and their paired comparison; copies
# the plots and a screenshot of the run page (report.html, in headless Chromium) to docs/img/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
out=${1:-outputs/docs_figures}
run() { bash scripts/demo.sh "$@"; }  # the demo's command, options added
mkdir -p "$out"
run --output "$out/gru_xnet" > "$out/demo.log" 2>&1 || { tail -20 "$out/demo.log"; exit 1; }
.venv/bin/python scripts/readme_sample.py "$out/demo.log"
run --permutations 9 --output "$out/gru_xnet" > "$out/gru_xnet.log" 2>&1 || { tail -20 "$out/gru_xnet.log"; exit 1; }
run --permutations 9 --model de_logreg --output "$out/de_logreg" > /dev/null 2>&1
.venv/bin/python -m loso.compare "$out/de_logreg" "$out/gru_xnet" --output "$out/comparison" > /dev/null
mkdir -p docs/img
cp "$out/gru_xnet/figures/per_subject_accuracy.png" docs/img/per_subject_accuracy.png
cp "$out/gru_xnet/figures/permutation_null.png" docs/img/permutation_null.png
cp "$out/comparison/figures/subject_lines.png" docs/img/comparison.png
.venv/bin/python scripts/check_report.py "$out/gru_xnet/report.html" --screenshot docs/img/report.png > /dev/null
echo "README.md sample and docs/img/: $(ls docs/img | tr '\n' ' ')"
