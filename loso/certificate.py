"""The leakage certificate of a LOSO run: checks the run makes on itself, computed from its own fold plan, features
and result files (never from what its configuration promises), written by `loso.run` as `<out>/certificate.json`.

`loso.aggregate` renders it, never recomputes it: PROTOCOL.md's `## Leakage checks` lists every check as passed,
failed or not applicable (with why), and a failed check puts `LEAKAGE CHECK FAILED: ...` in every caption. A run
written before certificates existed says "not recorded". Computing needs the features (numpy, and the data loader's
normaliser); rendering needs nothing beyond the standard library.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gru_xnet.config import ExperimentConfig
    from gru_xnet.features import FeatureSet
    from loso.folds import Fold

log = logging.getLogger("loso")

CERTIFICATE_FILE = "certificate.json"
PASSED, FAILED, NOT_APPLICABLE = "passed", "failed", "not applicable"
SHOWN = 5
"""Offending folds or results named in a failed check's detail (the rest counted)."""

CHECKS = {
    "trials_on_one_side": "no (subject, session, trial) on two sides of a fold, and every result tested exactly its "
                          "fold's planned test windows",
    "test_subjects_held_out": "no window of a test subject on a training or validation side",
    "test_stimuli_held_out": "no window of a test stimulus on a training or validation side",
    "normaliser_from_training_rows": "the normaliser's statistics recomputed from the fold's training windows equal "
                                     "those the fold used (SHA-256 recorded per result)",
    "checkpoint_rule": "every tested model chosen on validation data or by the stated last-epoch rule, never on test "
                       "data",
    "tuned_subjects_out_of_tests": "subjects the hyper-parameters were tuned on are marked in their results and left "
                                   "out of every test",
    "permutations_relabel_training_side": "permutation replicates relabelled training-side trials only (the test "
                                          "windows keep their labels; the recorded label hash is recomputed)",
}
LAST_EPOCH = "last epoch, no validation"
"""How a torch fold without validation windows chooses the weights it tests (`gru_xnet.engine.fit`)."""


def read_records(out: Path) -> list[dict]:
    """Every result file of a run folder as written (observed and permutation replicates; nothing pooled)."""
    return [json.loads(path.read_text()) for folder in ("folds", "permutations")
            for path in sorted((out / folder).glob("*.json"))]


class Plan:
    """The fold plan on the features, each fold's sides (window indices) computed once."""

    def __init__(self, features: FeatureSet, folds: list[Fold]):
        self.features, self.folds = features, {fold.fold_id: fold for fold in folds}
        self.subject_of = {str(key): i for i, key in enumerate(features.subjects)}
        self._sides: dict[str, dict] = {}

    def sides(self, fold_id: str) -> dict:
        """{"train", "val", "test"}: the fold's window indices per side."""
        if fold_id not in self._sides:
            from gru_xnet.split import SIDES

            self._sides[fold_id] = {side: self.folds[fold_id].split.windows(self.features, side) for side in SIDES}
        return self._sides[fold_id]

    def trials(self, rows):
        """The distinct trials of `rows` as int64 codes of (subject index, session, trial) (`key` decodes one)."""
        import numpy as np

        f = self.features
        return np.unique((f.subject_index[rows].astype(np.int64) << 40) | (f.sessions[rows].astype(np.int64) << 20)
                         | f.trials[rows].astype(np.int64))

    @staticmethod
    def key(code: int) -> tuple[int, int, int]:
        return int(code) >> 40, (int(code) >> 20) & 0xFFFFF, int(code) & 0xFFFFF

    def fold_of(self, record: dict) -> str | None:
        """The planned fold a result was trained as (None: not in the plan)."""
        fold_id = record["fold"].get("trained_as", record["fold"]["fold_id"])
        return fold_id if fold_id in self.folds else None

    def tested(self, record: dict):
        """The plan's test windows of a result's test subject in the result's fold."""
        subject = self.subject_of.get(f"{record['fold']['dataset']}/{record['fold']['subject']}")
        test = self.sides(self.fold_of(record))["test"]
        return test[self.features.subject_index[test] == subject]


def _result(check: str, status: str, detail: str) -> dict:
    return {"check": check, "statement": CHECKS[check], "status": status, "detail": detail}


def _outcome(check: str, offences: list[str], passed: str) -> dict:
    """Failed naming the first offences, else passed with `passed` as its detail."""
    if not offences:
        return _result(check, PASSED, passed)
    more = f" and {len(offences) - SHOWN} more" if len(offences) > SHOWN else ""
    return _result(check, FAILED, "; ".join(offences[:SHOWN]) + more)


def _name(record: dict) -> str:
    variant = record.get("variant", 0)
    return record["fold"]["fold_id"] + (f" (replicate {variant})" if variant else "")


def trials_on_one_side(plan: Plan, records: list[dict]) -> dict:
    """Per fold, the three sides' trials pairwise disjoint; per result, its tested windows the plan's test windows."""
    import numpy as np

    offences = []
    for fold_id in plan.folds:
        sides = {side: plan.trials(rows) for side, rows in plan.sides(fold_id).items()}
        for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
            shared = np.intersect1d(sides[a], sides[b])
            if len(shared):
                offences.append(f"fold {fold_id}: {len(shared)} trial(s) on the {a} and {b} sides, e.g. (subject, "
                                f"session, trial) {plan.key(shared[0])}")
    for record in records:
        if plan.fold_of(record) is None:
            offences.append(f"result {_name(record)}: its fold is not in the run's plan")
            continue
        planned = plan.tested(record)
        tested = np.unique(np.asarray(record["predictions"]["window"], dtype=np.int64))
        if not np.array_equal(tested, np.unique(planned)):
            offences.append(f"result {_name(record)}: tested {len(tested)} window(s), the plan's test side holds "
                            f"{len(planned)} of this subject ({len(np.setdiff1d(tested, planned))} not planned)")
    return _outcome("trials_on_one_side", offences, f"{len(plan.folds)} fold(s): training, validation and test trials "
                    f"disjoint; {len(records)} result(s) tested exactly their planned test windows")


def held_out_subjects(plan: Plan, records: list[dict], manifest: dict) -> dict:
    """Splits that do not train on the test subject: none of its windows on a training side, in the plan and in
    the subjects each result's loaders delivered (`seen_subjects`)."""
    import numpy as np

    if manifest.get("split_subject_dependent"):
        return _result("test_subjects_held_out", NOT_APPLICABLE, "a subject-dependent split trains on the test "
                       "subject's own other trials by design; its trials are checked one by one above")
    offences = []
    features = plan.features
    for fold_id, fold in plan.folds.items():
        sides = plan.sides(fold_id)
        learnt = set(np.unique(features.subject_index[np.concatenate([sides["train"], sides["val"]])]).tolist())
        for subject in sorted(learnt & set(fold.split.test)):
            offences.append(f"fold {fold_id}: test subject {features.subjects[subject]} has windows on a training side")
    for record in records:
        test = f"{record['fold']['dataset']}/{record['fold']['subject']}"
        seen = record.get("seen_subjects") or {}
        if test in set(seen.get("train", [])) | set(seen.get("val", [])):
            offences.append(f"result {_name(record)}: its training loaders delivered windows of {test}")
        elif not seen:
            offences.append(f"result {_name(record)}: records no seen subjects (written by an older version)")
    return _outcome("test_subjects_held_out", offences, f"{len(plan.folds)} fold(s) in the plan and {len(records)} "
                    "result(s)' training and validation loaders hold no window of their test subject")


def held_out_stimuli(plan: Plan, manifest: dict) -> dict:
    """Splits that hold stimuli out: no test stimulus among a fold's training or validation windows."""
    from loso.splits import shared_stimuli

    if not manifest.get("split_stimulus_level"):
        return _result("test_stimuli_held_out", NOT_APPLICABLE, "this split does not hold stimuli out (where a "
                       "dataset's stimuli are shared, the protocol states the confound)")
    offences = [f"fold {fold_id}: stimuli {', '.join(sorted(shared)[:3])} on the training and test sides"
                for fold_id, fold in plan.folds.items() if (shared := shared_stimuli(plan.features, fold))]
    return _outcome("test_stimuli_held_out", offences,
                    f"{len(plan.folds)} fold(s): no test stimulus among the training or validation windows")


def normaliser_from_training_rows(plan: Plan, records: list[dict], config: ExperimentConfig) -> dict:
    """Each fold's normaliser refitted on its planned training windows (as `make_loaders` fits it), its hash
    compared with the one every result of the fold recorded."""
    from gru_xnet.data_loader import Normalizer

    if not records:
        return _result("normaliser_from_training_rows", NOT_APPLICABLE, "no fold result yet")
    fitted = config.data.normalization == "train"
    expected: dict[str, str] = {}
    offences, parts = [], {}
    for record in records:
        fold_id = plan.fold_of(record)
        if fold_id is None:
            continue
        if fold_id not in expected:
            normaliser = (Normalizer.fit(plan.features.features, plan.sides(fold_id)["train"],
                                         plan.features.subject_index, parts) if fitted else Normalizer.identity())
            expected[fold_id] = normaliser.sha256()
        used = record.get("normalizer_sha256")
        if used is None:
            offences.append(f"result {_name(record)}: records no normaliser hash (written by an older version)")
        elif used != expected[fold_id]:
            offences.append(f"result {_name(record)}: normaliser {used[:12]} differs from the one recomputed from "
                            f"its training windows ({expected[fold_id][:12]})")
    how = ("refitted on each fold's training windows" if fitted else
           "data.normalization 'none': the identity, as recorded")
    return _outcome("normaliser_from_training_rows", offences,
                    f"{len(records)} result(s) of {len(expected)} fold(s): normaliser {how}, hashes equal")


def _best_epoch(history: list[dict], monitor: str, mode: str) -> int | None:
    """The epoch `gru_xnet.engine.fit` keeps: the first with the best finite monitored value (epoch 1 when none
    is finite); None when the history lacks the monitor."""
    import math

    if not history or any(monitor not in record for record in history):
        return None
    best, chosen = None, 1
    for record in history:
        value = record[monitor]
        if value is None or not math.isfinite(value):
            continue
        if best is None or (value > best if mode == "max" else value < best):
            best, chosen = value, record["epoch"]
    return chosen


def _checkpoint_offence(record: dict, has_val: bool) -> tuple[str | None, str]:
    """(what is wrong with how a result chose the model it tested, or None; the rule it followed)."""
    import math

    selection = record.get("selection")
    if not selection:
        return "records no selection rule (written by an older version)", ""
    rule = selection.get("rule")
    if rule == "grid":
        scored_on = selection.get("scored_on", "")
        if (scored_on == "validation subjects") != has_val and not scored_on.startswith("none"):
            return f"grid scored on {scored_on!r} although the fold has {'a' if has_val else 'no'} validation side", ""
        scores = [entry["val_subject_balanced_accuracy"] for entry in record.get("history") or []]
        chosen = [entry["val_subject_balanced_accuracy"] for entry in record.get("history") or []
                  if entry["params"] == record.get("chosen_params")]
        finite = [s for s in scores if s is not None and math.isfinite(s)]
        if scores and (not chosen or (finite and chosen[0] != max(finite))):
            return f"chose {record.get('chosen_params')}, not a best-scoring grid point", ""
        return None, f"grid: {scored_on}"
    if has_val:
        if rule != "best validation epoch":
            return f"tested by rule {rule!r} although the fold has a validation side", ""
        best = _best_epoch(record.get("history") or [], selection["monitor"], selection["mode"])
        if best is None or best != record.get("best_epoch"):
            return (f"tested epoch {record.get('best_epoch')}, the best validation epoch of its history is "
                    f"{best}"), ""
        return None, "best validation epoch"
    if rule != LAST_EPOCH:
        return f"tested by rule {rule!r} although the fold has no validation side", ""
    if not record.get("best_epoch") or record["best_epoch"] != record.get("epochs_run"):
        return f"tested epoch {record.get('best_epoch')} of {record.get('epochs_run')}, not the last", ""
    return None, LAST_EPOCH


def checkpoint_rule(plan: Plan, records: list[dict]) -> dict:
    """Torch results: the best validation epoch of their own history, or the last epoch where the plan gives no
    validation side; scikit-learn results: a best-scoring grid point, scored on validation where there is one."""
    if not records:
        return _result("checkpoint_rule", NOT_APPLICABLE, "no fold result yet")
    offences, rules = [], defaultdict(int)
    for record in records:
        fold_id = plan.fold_of(record)
        if fold_id is None:
            continue
        offence, rule = _checkpoint_offence(record, len(plan.sides(fold_id)["val"]) > 0)
        if offence:
            offences.append(f"result {_name(record)}: {offence}")
        else:
            rules[rule] += 1
    return _outcome("checkpoint_rule", offences,
                    "; ".join(f"{n} result(s): {rule}" for rule, n in sorted(rules.items())))


def tuned_subjects_out_of_tests(records: list[dict], manifest: dict) -> dict:
    """A result testing a subject the config was tuned on is marked (the tables test unmarked subjects only), and
    no other result is."""
    tuned = set(manifest.get("tuned_on") or [])
    if not tuned:
        return _result("tuned_subjects_out_of_tests", NOT_APPLICABLE, "the config records no subject its "
                       "hyper-parameters were tuned on")
    offences, marked = [], 0
    for record in records:
        test = f"{record['fold']['dataset']}/{record['fold']['subject']}"
        flagged = bool(record.get("tuned_on_test_subject"))
        marked += flagged
        if flagged != (test in tuned):
            offences.append(f"result {_name(record)}: {test} {'is' if test in tuned else 'is not'} a tuned subject "
                            f"but is {'' if flagged else 'not '}marked")
    return _outcome("tuned_subjects_out_of_tests", offences, f"{marked} result(s) test one of the {len(tuned)} tuned "
                    "subject(s), each marked, so the tables leave them out of every test")


def permutations_relabel_training_side(plan: Plan, records: list[dict], config: ExperimentConfig) -> dict:
    """Each replicate's labels redrawn as the worker drew them (`loso.training.fold_labels`): the fold's test windows
    keep their labels, every changed label is on a training side, and the recorded label hash is the recomputed one."""
    import numpy as np

    from loso.training import fold_labels

    replicates = [r for r in records if r.get("variant", 0) > 0 and plan.fold_of(r) is not None]
    if not replicates:
        return _result("permutations_relabel_training_side", NOT_APPLICABLE, "no permutation replicate in this run")
    features = plan.features
    offences, done = [], {}
    for record in replicates:
        key = (plan.fold_of(record), record["variant"])
        if key not in done:
            sides = plan.sides(key[0])
            learnt = np.concatenate([sides["train"], sides["val"]])
            permuted = fold_labels(config, features, plan.folds[key[0]].split, key[1])
            changed = np.flatnonzero(permuted.labels != features.labels)
            done[key] = (int((permuted.labels[sides["test"]] != features.labels[sides["test"]]).sum()),
                         len(np.setdiff1d(changed, learnt)), permuted.label_hash(learnt))
        relabelled_tests, outside, hashed = done[key]
        if relabelled_tests or outside:
            offences.append(f"result {_name(record)}: {relabelled_tests} test window(s) relabelled, {outside} changed "
                            "label(s) off the training side")
        elif record.get("label_hash") != hashed:
            offences.append(f"result {_name(record)}: recorded label hash {record.get('label_hash')} is not the "
                            f"replicate's recomputed {hashed}")
    return _outcome("permutations_relabel_training_side", offences, f"{len(replicates)} replicate result(s) of "
                    f"{len({k for k, _ in done})} fold(s): only training-side labels changed, label hashes equal")


def certify(features: FeatureSet, folds: list[Fold], records: list[dict], manifest: dict,
            config: ExperimentConfig) -> dict:
    """Every check on a run's plan (`folds` on `features`) and result `records`: the certificate."""
    plan = Plan(features, folds)
    checks = [trials_on_one_side(plan, records), held_out_subjects(plan, records, manifest),
              held_out_stimuli(plan, manifest), normaliser_from_training_rows(plan, records, config),
              checkpoint_rule(plan, records), tuned_subjects_out_of_tests(records, manifest),
              permutations_relabel_training_side(plan, records, config)]
    return {"version": 1, "folds": len(folds), "results": len(records), "checks": checks}


def write_certificate(out: Path, certificate: dict) -> None:
    from gru_xnet.config import write_text_atomic

    write_text_atomic(out / CERTIFICATE_FILE, json.dumps(certificate, indent=2))
    counts = defaultdict(int)
    for check in certificate["checks"]:
        counts[check["status"]] += 1
    (log.error if counts[FAILED] else log.info)("leakage checks (%s): %s", out / CERTIFICATE_FILE,
                                                ", ".join(f"{n} {status}" for status, n in counts.items()))


def read_certificate(out: Path) -> dict | None:
    """A run folder's certificate, or None when the run was written before certificates existed."""
    path = out / CERTIFICATE_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def failed(certificate: dict | None) -> list[dict]:
    return [check for check in (certificate or {}).get("checks", []) if check["status"] == FAILED]


def failure_line(certificate: dict | None) -> str | None:
    """The caption line of a certificate with a failed check, else None."""
    failures = failed(certificate)
    if not failures:
        return None
    return "LEAKAGE CHECK FAILED: " + "; ".join(f"{check['statement']} ({check['detail']})" for check in failures)


def certificate_section(certificate: dict | None, results_now: int | None = None) -> list[str]:
    """PROTOCOL.md's `## Leakage checks`: one line per check (and whether the folder has gained results since), or
    'not recorded'."""
    if certificate is None:
        return ["- Not recorded: loso.run certifies a run when its folds finish (a run written by an older version, or "
                "stopped before, has no certificate; `loso.run --resume` writes it)."]
    lines = [f"Computed by loso.run from the run's own fold plan ({certificate['folds']} folds) and its "
             f"{certificate['results']} result files, not from its configuration; loso.aggregate renders it "
             f"({CERTIFICATE_FILE}).", ""]
    if results_now is not None and results_now != certificate["results"]:
        lines += [f"The folder now holds {results_now} result files: `loso.run --resume` certifies them all.", ""]
    return lines + [f"- **{check['status']}**: {check['statement']}: {check['detail']}."
                    for check in certificate["checks"]]
