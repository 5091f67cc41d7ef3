"""The statement of a LOSO run: the caption lines of every table and `tables/PROTOCOL.md`.

Everything here is read off `run.json` (the manifest `loso.run` writes) and the fold results, so a
reader can write the methods section of a paper from PROTOCOL.md alone: data, split, training,
statistics and provenance.
"""

from __future__ import annotations

import math
from typing import Any

from loso.certificate import LAST_EPOCH, certificate_section, failure_line
from loso.stats import BOOTSTRAP_RESAMPLES, PERMUTATION_RESAMPLES, T_INTERVAL_BELOW

TUNED_NOTE = "hyper-parameters tuned on this subject: not an unbiased estimate"
NOT_RECORDED = "not recorded (run.json written by an older version)"

STATISTICS = (
    "mean [95% CI]: Student t interval of the mean over subjects below "
    f"{T_INTERVAL_BELOW} subjects (the percentile bootstrap is too narrow there: about 85 % coverage at 5 subjects), "
    f"percentile bootstrap ({BOOTSTRAP_RESAMPLES} resamples, seed 0) from {T_INTERVAL_BELOW} on; each row names its "
    "method; intervals are clipped to the scores' range, 0-100 %. p vs chance: one-sided Wilcoxon signed-rank of balanced accuracy - 1/K (K = classes present in the "
    "subject's test set; one-class subjects are left out of this test); p vs majority: one-sided paired Wilcoxon of "
    "accuracy - the majority-class baseline. Zero differences are split between the signs (zsplit). Wilcoxon "
    "p-values: exact distribution with at most 50 subjects and no ties or zeros, a sign-flip permutation "
    f"distribution ({PERMUTATION_RESAMPLES} resamples, seed 0) with at most 50 subjects and ties or zeros, the normal "
    "approximation above 50 subjects; each row names its method; differences all zero give p = 1. Holm-corrected "
    "across the datasets of this run, per level (rows computed on untuned subjects only when a config was tuned on "
    "some). r: matched-pairs rank-biserial correlation. Trial level: a trial's window probabilities averaged (the "
    "softmax of the margins, for a model deciding by its margins). "
    "Each subject on its own (per-subject p_vs_chance): a one-sided exact binomial test of its trial-level hits "
    "(seeds averaged, rounded down) against p0 = the largest class share among its test trials (trials, not windows: "
    "the windows of a trial are not independent), Holm-corrected over the dataset's subjects; 'subjects above chance' "
    "counts those with a Holm p below 0.05 (tuned and one-class subjects are not tested). "
    "Folds are not independent: every fold model shares most of its training subjects with the others, so tests "
    "over subjects treat correlated estimates as independent (the usual LOSO caveat; the permutation null retrains "
    "every fold and does not assume independence).")


def statistics_statement(manifest: dict) -> str:
    """How a subject's score is made under this run's split and sessions, then STATISTICS."""
    manifest = with_legacy_keys(manifest)
    separate = manifest.get("split_sessions_scored_apart", manifest["sessions"] == "separate"
                            and manifest.get("multi_session") and not manifest.get("split_subject_dependent"))
    return ("Statistics over subjects: a subject tested in several folds (stimulus groups, within-subject sessions) "
            "has their test predictions pooled and scored once" + ("; with sessions 'separate' each session is scored "
                                                                   "on its own and a subject's sessions are averaged"
                                                                   if separate else "")
            + "; a subject's seeds are then averaged; windows, trials and sessions are never counted as samples. "
            + STATISTICS)


def _permutation_line(manifest: dict) -> str:
    """How the permutation null of this run was drawn under its split: what is relabelled, whether the test subject's
    own trials are, and what a replicate is (scheme 2)."""
    n = manifest["permutations"]
    if manifest.get("permutation_scheme") != 2:
        return (f"permutation null: {n} retrainings per fold, labels permuted per fold and seed (old scheme 1: too "
                "narrow with several seeds; rerun into a new folder)")
    seeded = f"seeded by the config seed {manifest.get('permutation_salt')}, k and the subject only"
    if manifest.get("split_subject_dependent"):
        relabelled = ("replicate k relabels the test subject's own training and validation trials (whole trials "
                      f"permuted within each session, {seeded}): the split trains on the test subject alone, so its "
                      "own training trials are relabelled and its test trials keep their real labels")
    else:
        relabelled = ("replicate k relabels the training and validation subjects (whole trials permuted within each "
                      "(subject, session)" + ("" if manifest.get("split_subject_level") else
                                              ", among the trials a fold trains on") + f", {seeded}"
                      + (", so every fold trains on one relabelled dataset" if manifest.get("split_subject_level")
                         else "") + "); the test subject is never relabelled in its own fold, it keeps its real labels")
    return (f"permutation null: {n} replicates; {relabelled}; a replicate is every fold and seed of the run retrained "
            "once on replicate k's labels")


LOSO_STATEMENT = "leave-one-subject-out: each fold tests one subject and trains on other subjects only"


def with_legacy_keys(manifest: dict) -> dict:
    """A run.json written before `--split` and `--sessions` existed, read as the LOSO run it was (its only
    multi-session dataset then was SEED-IV)."""
    legacy = {"split": "loso", "split_statement": LOSO_STATEMENT, "sessions": manifest.get("seediv_sessions", "pooled"),
              "multi_session": {"SEEDIV": 3} if "SEEDIV" in manifest.get("datasets", ()) else {}}
    return {**legacy, **manifest}


POOLS = {"within": "a fold trains on other subjects of the same dataset",
         "joint": "a fold trains on other subjects of every selected dataset"}


def _split_line(manifest: dict) -> str:
    return f"Split '{manifest['split']}': {manifest['split_statement']}"


def _sessions_line(manifest: dict) -> str | None:
    """What the run did with the sessions of its multi-session datasets (None when it has none): the split's own use
    of them when it fixes it (subject-dependent splits), else what `sessions` meant."""
    several = manifest.get("multi_session") or {}
    if not several:
        return None
    counts = ", ".join(f"{d}: {n}" for d, n in several.items())
    if manifest.get("split_sessions"):
        return f"sessions ({counts} sessions): {manifest['split_sessions']}"
    how = ("a subject's sessions tested together" if manifest["sessions"] == "pooled" else
           "one session at a time, trained on that session of the other subjects; sessions averaged within each subject")
    return f"sessions '{manifest['sessions']}' ({counts} sessions): {how}"


def protocol_lines(manifest: dict, n_failed: int = 0, completeness: str | None = None,
                   certificate: dict | None = None) -> list[str]:
    """Human-readable statement of what was run: the caption of every table and the head of the printout (first, a
    leakage check the run failed, from its certificate)."""
    manifest = with_legacy_keys(manifest)
    lines = [line for line in [failure_line(certificate)] if line]
    if manifest.get("synthetic"):
        lines.append("SYNTHETIC DATA (generated in the real file formats) - not a result on real EEG")
    if completeness:
        lines.append(completeness)
    lines.append(_split_line(manifest) + ("" if manifest.get("split_subject_dependent") else
                                          f"; protocol '{manifest['protocol']}' ({POOLS[manifest['protocol']]})"))
    lines.append("datasets: " + "; ".join(f"{k}: {v}" for k, v in manifest["labels"].items()))
    if _sessions_line(manifest):
        lines.append(_sessions_line(manifest))
    lines.append(f"seeds: {' '.join(map(str, manifest['seeds']))}; config hash {manifest['config_hash']}; "
                 f"channels: {len(manifest['channels'])}")
    if manifest.get("model"):
        lines.append(f"model {manifest['model']['name']} ({manifest['model_kind']}): {manifest['model_input']}")
    elif manifest.get("model_input"):
        lines.append(f"model {manifest['model_input']}")
    if manifest.get("card_protocol"):
        lines.append(_card_line(manifest["card_protocol"]))
    lines += manifest.get("passband_notes", [])
    if manifest.get("permutations"):
        lines.append(_permutation_line(manifest))
    if manifest.get("tuned_on"):
        lines.append(f"WARNING: the hyper-parameters were tuned on {len(manifest['tuned_on'])} subject(s); folds that "
                     f"test one of them are marked ({TUNED_NOTE}) and left out of every test")
    if n_failed:
        lines.append(f"WARNING: {n_failed} fold job(s) failed and are not in these tables")
    return lines + _stimulus_lines(manifest)


def _card_line(card: dict) -> str:
    """The caption line of a run made under a protocol card (`loso.benchmark --card`)."""
    overridden = card.get("overridden") or {}
    return (f"card {card['id']} ({card['title']}; {card['repository']} at {card['commit'][:7]}): {card['dataset']} "
            f"{card['task']}, {card['model']} as its {card['published_as']}; {len(card['settings'])} settings with "
            f"their sources and {len(card['deviations'])} deviations in PROTOCOL.md"
            + (f"; your value won for {', '.join(overridden)}" if overridden else ""))


def _card_section(card: dict) -> list[str]:
    """PROTOCOL.md's account of a card: every setting with its source (and whether yours won), the split, metrics,
    aggregation, the published cell, the deviations and notes."""
    import json

    published = card.get("published")
    values = "; ".join(f"{name} {value[0]:.2f}" + ("" if value[1] is None else f" ± {value[1]:.2f}")
                       for name, value in (published or {}).get("values", {}).items())
    lines = [f"- {card['id']}: {card['title']}; {card['citation']}; {card['repository']} at commit {card['commit']}, "
             f"table {card['table']}. This run: {card['dataset']} {card['task']}, {card['model']} (its "
             f"{card['published_as']}).",
             f"- Split: {card['split']} ({card['split_source']}).", "- Settings (key = value: source):"]
    lines += [f"  - `{s['key']}` = `{json.dumps(s['value'])}`: {s['source']}"
              + (f" (OVERRIDDEN: your value {s['overridden_by']} was used)" if "overridden_by" in s else "")
              for s in card["settings"]]
    lines.append(f"- Metrics ({card['level']} level): " + "; ".join(
        f"{m['name']}: {m['definition']} ({m['source']})" for m in card["metrics"]) + ".")
    lines.append(f"- Aggregation: {card['aggregation']['statement']} ({card['aggregation']['source']}).")
    lines.append(f"- Published ({published['source']}): {values}." if published else "- Published: no cell.")
    lines += ["- Deviations:", *[f"  - {d}" for d in card["deviations"]]]
    return lines + (["- Notes:", *[f"  - {n}" for n in card["notes"]]] if card.get("notes") else [])


def _stimulus_lines(manifest: dict) -> list[str]:
    """Each dataset's stimulus confound, or, under a split that keeps every stimulus on one side, that it is removed."""
    statements = [statement for dataset, statement in manifest.get("stimulus", {}).items()
                  if dataset in manifest["datasets"]]
    if statements and manifest.get("split_removes_stimulus"):
        return ["STIMULI: no stimulus is on two sides of any fold (checked on the fold plan), so the stimulus "
                "confound of these datasets does not apply"]
    return statements


def _get(mapping: dict, *keys: str, default: Any = None) -> Any:
    for key in keys:
        if not isinstance(mapping, dict) or key not in mapping:
            return default
        mapping = mapping[key]
    return mapping


def _data_section(manifest: dict) -> list[str]:
    data = _get(manifest, "config", "data", default={})
    lines = [f"- Datasets and labels: {'; '.join(f'{k}: {v}' for k, v in manifest['labels'].items())}."]
    lines.append("- Classes: " + "; ".join(f"{d}: " + ", ".join(f"{i} = {n}" for i, n in enumerate(names))
                                          for d, names in manifest["class_names"].items()) + ".")
    if manifest.get("synthetic"):
        lines.append("- SYNTHETIC DATA, generated in the real file formats: not a result on real EEG.")
    lines.append(f"- Channels ({len(manifest['channels'])}): {', '.join(manifest['channels'])}.")
    if data:
        window, overlap = data["window_seconds"], data["window_overlap"]
        frame, frame_overlap = data["stft_window_seconds"], data["stft_overlap"]
        lines.append(f"- Windows: {window:g} s, overlap {overlap:g} (a new window every {window * (1 - overlap):g} s), "
                     "cut within each trial; a trial's windows share its label and stay on one side of every split.")
        representation = manifest.get("representation")
        if representation:
            lines.append(f"- Features: {representation['statement']}; {manifest.get('model_input', '')}.")
            lines.append(f"- Normalisation: z-score {representation['normalised']}, fitted on the fold's training "
                         "windows only.")
            lines += [f"- {note}." for note in manifest.get("passband_notes", [])]
        else:
            lines.append(f"- Features: log-power STFT, {frame:g} s frames every {frame * (1 - frame_overlap):g} s "
                         f"(only frames wholly inside the window), {data['freq_range'][0]:g}-{data['freq_range'][1]:g} "
                         f"Hz; {manifest.get('model_input', '')}.")
    filters = manifest.get("filters")
    lines.append("- Filters (zero-phase, per trial, before windowing): " + (
        "; ".join(f"{d}: " + (", ".join(f"{k.replace('_hz', '')} {v} Hz" for k, v in f.items() if v) or "none")
                  for d, f in filters.items()) if filters else NOT_RECORDED) + ".")
    lines += [f"- {statement}" for statement in _stimulus_lines(manifest)] or [f"- Stimuli: {NOT_RECORDED}."]
    return lines


def _split_section(manifest: dict, completeness: str | None) -> list[str]:
    manifest = with_legacy_keys(manifest)
    data = _get(manifest, "config", "data", default={})
    lines = [f"- {_split_line(manifest)}" + ("." if manifest.get("split_subject_dependent") else
                                             f"; protocol '{manifest['protocol']}': {POOLS[manifest['protocol']]}.")]
    if _sessions_line(manifest):
        lines.append(f"- {_sessions_line(manifest)}.")
    if data and manifest.get("split_validation") == "none":
        lines.append("- Validation: none (the papers' rule): every training trial trains; a torch model's last epoch "
                     f"is tested ({LAST_EPOCH}); a scikit-learn model's grid is scored by StratifiedGroupKFold over "
                     "the training trials (k = min(3, the smallest class's training trials), seeded by the fold's "
                     "seed). No test trial chooses anything.")
    elif data and manifest.get("split_subject_dependent"):
        lines.append("- Validation (early stopping only): a seeded, class-stratified share of the test subject's own "
                     "training trials (whole trials, as the split says); never a test trial.")
    elif data:
        fraction = data["val_ratio"] / (data["train_ratio"] + data["val_ratio"])
        lines.append(f"- Validation (early stopping only): {fraction:.0%} of each dataset's training subjects (at "
                     "least one), drawn per fold with a generator seeded by the seed and the fold's test subject (or "
                     "group); never a test subject, never a window of one.")
    planned = manifest.get("planned_folds")
    lines.append(f"- Results planned: {len(planned)} (one per fold, test subject and seed), "
                 f"each with {manifest.get('permutations', 0) + 1} label variant(s) (the real labels + permutations)."
                 if planned is not None else f"- Fold plan: {NOT_RECORDED}.")
    if completeness:
        lines.append(f"- {completeness}")
    return lines


def _model_line(manifest: dict) -> str:
    """The model, its parameters and size (runs from before the model registry: the gru_xnet keys)."""
    size, shape = manifest.get("model_parameters"), manifest.get("input_shape")
    tail = (f"; {size:,} trainable parameters." if size else
            f"; {math.prod(shape):,} input features per window." if shape else ".")
    record = manifest.get("model")
    if record:
        params = ", ".join(f"{k}={v}" for k, v in record["params"].items()) or "defaults"
        return f"- Model: {record['name']}, {manifest['model_summary']} ({manifest['model_input']}); {params}{tail}"
    model = manifest["config"]["model"]
    return (f"- Model: CNN-BiGRU-attention, '{model['model_type']}' ({manifest.get('model_input', '')}); CNN widths "
            f"{model['cnn_channels']}, fusion {model['fusion_dim']}, BiGRU {model['gru_layers']} x "
            f"{model['gru_hidden_size']}, {model['num_attention_heads']} attention heads"
            f"{'' if model['use_attention'] else ' (attention off)'}, head {model['fc_dims']}, dropout "
            f"{model['dropout']}" + tail)


def _estimator_training(manifest: dict, runtime: dict) -> list[str]:
    """How a scikit-learn model was fitted: its grid, the tie rule and how often it applied, how it decides."""
    record = manifest.get("model") or {}
    grid, params = record.get("grid") or {}, record.get("params") or {}
    own = ", ".join(f"{name.rsplit('__', 1)[-1]} = {params[name.rsplit('__', 1)[-1]]}" for name in grid
                    if name.rsplit("__", 1)[-1] in params) or "its own"
    lines = [
        "- Fitting (scikit-learn): every value of the model's grid fitted on the fold's training side and scored, on "
        "what the evaluator predicts, by the validation side's mean per-subject balanced accuracy; the best refitted "
        "on training + validation, classes weighted 'balanced' (a fold without a validation side scores the grid by "
        "StratifiedGroupKFold over its training trials, k = min(3, the smallest class's training trials), seeded, and "
        "refits on its training side). Ties go to the tied value nearest the model's default "
        f"in log10 ({own}). The training.* keys (epochs, optimiser, batch size, AMP, augmentation, sampling, threads) "
        "do not apply and are ignored. Deterministic: seeds repeat the same fit."]
    if runtime.get("grid_ties"):
        tied, folds = runtime["grid_ties"]
        names = ", ".join(name.rsplit("__", 1)[-1] for name in grid) or "the grid"
        lines.append(f"- {names} tied on its validation (or inner-fold) score in {tied} of {folds} folds (grid_tied in "
                     "the fold files).")
    if record.get("decision") == "margin":
        lines.append("- Decision by margin: a window's class is the argmax of the classifier's decision_function "
                     "margins (one-vs-rest columns; de_svm's SVC breaks ties itself, so this is its own predict); AUC "
                     "ranks the margins; a trial's vote averages the softmax of its windows' margins (two classes: "
                     "the sigmoid of the margin). No Platt probabilities.")
    return lines


def _optimiser_line(training: dict) -> str:
    """The optimiser, its schedule and the training loss (keys a run.json from before them lacks: their defaults)."""
    period = training.get("cosine_period", 0) or training["num_epochs"]
    schedule = ("constant learning rate" if not training["use_scheduler"] else
                "cosine annealing to zero over the planned epochs" if period >= training["num_epochs"] else
                f"cosine annealing to zero over {period} epochs, then rising again (PyTorch's CosineAnnealingLR is "
                "periodic)")
    smoothing = training.get("label_smoothing", 0.0)
    return (f"- Optimiser: {'AdamW' if training.get('optimizer') == 'adamw' else 'Adam'}, learning rate "
            f"{training['learning_rate']:g}, weight decay {training['weight_decay']:g}, epsilon "
            f"{training.get('adam_eps', 1e-8):g}; {schedule}; loss: cross-entropy"
            + (f" with label smoothing {smoothing:g} (training only)." if smoothing else "."))


def _training_section(manifest: dict, runtime: dict) -> list[str]:
    config = manifest.get("config")
    if not config:
        return [f"- {NOT_RECORDED}."]
    training, data = config["training"], config["data"]
    lines = [_model_line(manifest)]
    if manifest.get("model_kind") == "scikit-learn":
        return lines + _estimator_training(manifest, runtime) + [f"- Seeds: {' '.join(map(str, manifest['seeds']))}."]
    augmented = (manifest.get("representation") or {}).get("augment", True)
    stop = (f"early stopping on validation {training['monitor']} with patience {training['patience']}"
            if training["early_stopping"] else "no early stopping")
    lines.append(f"- Epochs: {training['num_epochs']} ({LAST_EPOCH}): the test uses the last epoch's weights."
                 if manifest.get("split_validation") == "none" else
                 f"- Epochs: at most {training['num_epochs']}, {stop}; the test uses the weights of the epoch with "
                 f"the best validation {training['monitor']} (the first such epoch on ties; without validation "
                 "windows: the last epoch's).")
    lines.append(_optimiser_line(training))
    lines.append(f"- Batch size {training['batch_size']} (split over the DDP workers of a fold); "
                 + (f"augmentation: {data['augmentation_ratio']:g} augmented copies per training window per epoch "
                    "(channel gain, smooth spectral offset, noise, one time and one frequency mask)"
                    if data["use_augmented"] and data["augmentation_ratio"] > 0 and augmented
                    else "no augmentation" + ("" if augmented else " (defined for STFT images only)"))
                 + "; " + ("balanced sampling: every (dataset, class) drawn equally often, with replacement."
                           if data["balance_classes"] else "no class balancing."))
    if not manifest.get("representation"):
        lines.append("- Normalisation: z-score per (channel, frequency), fitted on the fold's training windows only.")
    lines.append(f"- Precision and devices: {runtime.get('precision') or NOT_RECORDED}; "
                 f"{training['num_threads']} torch thread(s) per worker, deterministic kernels "
                 f"{'on' if training['deterministic'] else 'off'}.")
    lines.append(f"- Seeds: {' '.join(map(str, manifest['seeds']))} (each fold trained once per seed; a subject's "
                 "score averages its seeds).")
    if manifest.get("tuned_on"):
        lines.append(f"- Hyper-parameters tuned on: {', '.join(manifest['tuned_on'])} ({TUNED_NOTE}).")
    return lines


def _provenance_section(manifest: dict) -> list[str]:
    source = manifest.get("provenance") or {}
    lines = [f"- Config hash {manifest['config_hash']}, data fingerprint {manifest.get('data_fingerprint', '?')}."]
    lines += [f"- {key}: {value}" for key, value in source.items()]
    return lines


COLUMNS = [
    "- `synthetic`: true when the data were generated (every CSV carries it).",
    "- `level`: `window` scores every test window; `trial` averages each trial's window probabilities "
    "(a trial is subject, session, trial) and scores trials.",
    "- `subjects` (per dataset): `untuned` rows carry every statistic on the subjects the config was not tuned on; "
    "`all` rows carry means and CIs over every subject and no test when some were tuned on (they stay out of the "
    "Holm family); without tuned subjects there is one `all` row with every statistic. `n_subjects` counts the "
    "subjects a row's statistics use, `n_tuned_on` the dataset's test subjects the config was tuned on.",
    "- `balanced_accuracy`: mean recall over the classes present in the test set (%); undefined (empty) "
    "for a subject whose test set holds one class. Its baseline is `chance_balanced_accuracy` = 1/K.",
    "- `accuracy` (%) and its baselines: `majority_accuracy`, the fold's training-side majority class "
    "(its training + validation data of the test subject's dataset) predicted for every test item; "
    "`prior_accuracy`, the expected accuracy of guessing with those class frequencies. A subject tested in several "
    "folds: each fold's own trivial classifier scored on that fold's test items, hits (and expectations) summed.",
    "- `macro_f1` (%, over the classes in the true or the predicted labels, as scikit-learn), `kappa` (Cohen's), "
    "`macro_auc` (one-vs-rest ROC AUC over the classes present, from the saved probabilities, or the margins of a "
    "model deciding by them): fractions for kappa "
    "and AUC.",
    "- `*_ci_low`, `*_ci_high`, `*_ci_method`: the 95 % interval of the mean and how it was computed.",
    "- `p_vs_chance`, `p_vs_majority` with `_method` (Wilcoxon p computation), `_holm` (adjusted) and `r_vs_*` "
    "(rank-biserial effect size).",
    "- `*_seed_sd`: SD of a subject's score over seeds; `seed_sd`: SD over seeds of the dataset mean, over the "
    "subjects present in every seed.",
    "- `p_vs_chance` per subject (per_subject.csv), with `p_vs_chance_holm`: the subject's own one-sided exact "
    "binomial p of `trial_hits` of `n_trials` against `trial_chance_share` (the largest class share of its test "
    "trials), Holm over the dataset's subjects; per dataset, `n_above_chance` of `n_tested_vs_chance` subjects have a "
    "Holm p below 0.05.",
    "- `session` (per_subject.csv, sessions scored apart): `all` is the subject's row (sessions averaged: what every "
    "test uses); a session number is that (subject, session)'s own score, descriptive. `subject_session_accuracy_mean`"
    " and `_sd` (per dataset): accuracy mean and SD (n - 1) over subject-sessions, the figure the within-subject "
    "papers report; descriptive, no test uses it.",
    "- `perm_p`: empirical permutation p, (1 + #null >= observed) / (1 + #replicates), per subject on its own "
    "balanced accuracy (uncorrected for the number of subjects), per dataset on the mean over subjects.",
    f"- `hyperparameters_tuned_on_subject`: {TUNED_NOTE}.",
]


def protocol_document(lines: list[str], manifest: dict, notes: list[str], runtime: dict,
                      completeness: str | None, certificate: dict | None = None, results_now: int | None = None) -> str:
    """tables/PROTOCOL.md: the statement, then the card (a run under one), Data, Split, Leakage checks, Training,
    Statistics, Provenance and Columns."""
    card = (["## Card", "", *_card_section(manifest["card_protocol"]), ""] if manifest.get("card_protocol") else [])
    return "\n".join([
        "# Protocol", "", *[f"- {line}" for line in lines], "", *card,
        "## Data", "", *_data_section(manifest), "",
        "## Split", "", *_split_section(manifest, completeness), "",
        "## Leakage checks", "", *certificate_section(certificate, results_now), "",
        "## Training", "", *_training_section(manifest, runtime), "",
        "## Statistics", "", statistics_statement(manifest), "", *[f"- {note}" for note in notes], "",
        "## Provenance", "", *_provenance_section(manifest), "",
        "## Columns", "", *COLUMNS, ""])
