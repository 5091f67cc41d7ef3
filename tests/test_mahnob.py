"""MAHNOB-HCI: the generator writes real BDF files (pyEDFlib) and session.xml in the layout TorchEEG reads, the reader
takes labels, stimuli and subjects from session.xml, the rate from the BDF header, crops the 30 s around the clip,
skips and counts implicit-tagging sessions and folders without a BDF, and a malformed file is one error naming it."""

from __future__ import annotations

import json
import logging
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pyedflib
import pytest

from gru_xnet.datasets import DatasetError, get_reader, write_synthetic
from gru_xnet.datasets.mahnob import MAHNOB_CHANNELS, write_bdf, write_session_xml
from loso.run import main as loso_main
from tests.conftest import tiny_config

TORCHEEG_CHANNELS = ["FP1", "AF3", "F3", "F7", "FC5", "FC1", "C3", "T7", "CP5", "CP1", "P3", "P7", "PO3", "O1", "OZ",
                     "PZ", "FP2", "AF4", "FZ", "F4", "F8", "FC6", "FC2", "CZ", "C4", "T8", "CP6", "CP2", "P4", "P8",
                     "PO4", "O2"]
"""TorchEEG's MAHNOB_CHANNEL_LIST (torcheeg/datasets/constants/emotion_recognition/mahnob.py, commit b6039b1)."""


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """3 subjects x 4 emotion sessions of 4 s clips (64 s recordings), each with an implicit-tagging session and an
    emotion session whose BDF is missing."""
    return write_synthetic(tmp_path_factory.mktemp("mahnob"), ["MAHNOB"], 3, trials=4, seconds=4.0)["MAHNOB"]


def copy(root: Path, tmp_path: Path) -> Path:
    shutil.copytree(root, tmp_path / "MAHNOB")
    return tmp_path / "MAHNOB"


def test_the_layout_is_what_torcheeg_reads(root):
    """TorchEEG's MAHNOBDataset (torcheeg/datasets/module/emotion_recognition/mahnob.py, commit b6039b1): a record is
    a folder of Sessions/ (l. 352), its 'session.xml' parsed by xmltodict (l. 188-191) and its first '*.bdf' (l. 194);
    emotion sessions hold '@feltArsl' (l. 282), the meta info '@mediaFile', '@cutLenSec' and subject '@id'
    (l. 287-289) and '@feltVlnc'; the first 32 BDF channels are the EEG (l. 205) and the clip runs from the first
    Status event + 1 to the second - 1 (l. 199, 207)."""
    import xmltodict  # what TorchEEG parses with (installed with moto, a dev dependency)

    reader, read = get_reader("MAHNOB", root), {}
    for folder in sorted((root / "Sessions").iterdir(), key=lambda p: int(p.name)):
        info = xmltodict.parse((folder / "session.xml").read_text())["session"]
        assert info["subject"]["@id"] in ("1", "2", "3") and "@mediaFile" in info and "@cutLenSec" in info
        bdfs = list(folder.glob("*.bdf"))
        if "@feltArsl" not in info or not bdfs:  # implicit tagging (TorchEEG skips it), or no recording
            continue
        assert len(bdfs) == 1 and 1 <= int(info["@feltVlnc"]) <= 9 and 1 <= int(info["@feltArsl"]) <= 9
        with pyedflib.EdfReader(str(bdfs[0])) as bdf:
            labels = [label.upper() for label in bdf.getSignalLabels()]
            assert labels[:32] == TORCHEEG_CHANNELS == list(MAHNOB_CHANNELS) and labels[-1] == "STATUS"
            rate = bdf.getSampleFrequency(0)
            status = bdf.readSignal(len(labels) - 1)
            eeg = np.stack([bdf.readSignal(i) for i in range(32)])
        onsets = np.flatnonzero(np.diff(status, prepend=0) > 0)  # mne.find_events: a step up is an event
        start, end = onsets[0] + 1, onsets[1] - 1
        assert (end - start + 1) / rate == float(info["@cutLenSec"]) == 4.0
        subject = info["subject"]["@id"]
        read.setdefault(subject, {t.trial: t for t in reader.read_subject(subject)})
        trial = read[subject][int(folder.name)]
        np.testing.assert_allclose(trial.signal, eeg[:, start:end + 1], atol=0.01)  # our 30 s crop = TorchEEG's clip
    assert sum(map(len, read.values())) == 12


def test_reader_labels_stimuli_subjects_and_counts_what_it_skips(root, tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        reader = get_reader("MAHNOB", copy(root, tmp_path))
        assert reader.subjects() == ["1", "2", "3"]
    assert "skipped 3 implicit-tagging session(s) (no feltVlnc), 3 folder(s) without a BDF" in caplog.text
    skipped = "skipped: 3 implicit-tagging session(s) (no feltVlnc), 3 folder(s) without a BDF"
    assert skipped in reader.label_description()
    xml = {int(p.parent.name): ET.parse(p).getroot() for p in (reader.data_dir).glob("*/session.xml")}
    for subject in reader.subjects():
        trials = reader.read_subject(subject)
        assert len(trials) == 4 and len({t.stimulus for t in trials}) == 4
        for trial in trials:
            attributes = xml[trial.trial].attrib
            assert xml[trial.trial].find("subject").get("id") == subject and trial.stimulus == attributes["mediaFile"]
            assert trial.label == int(int(attributes["feltVlnc"]) >= 5) and trial.sampling_rate == 256.0
            assert trial.signal.shape == (32, 4 * 256) and trial.signal.dtype == np.float32 and trial.baseline is None
    arousal = get_reader("MAHNOB", reader.root, label_dimension="arousal", baseline="subtract").read_subject("1")
    assert [t.label for t in arousal] == [int(int(xml[t.trial].get("feltArsl")) >= 5) for t in arousal]
    assert arousal[0].baseline.shape == (32, 30 * 256)
    first = arousal[0].trial  # its rating set to 5: high under '>=' (TorchEEG, EEGain), low under '>' (LibEER)
    xml[first].set("feltVlnc", "5")
    ET.ElementTree(xml[first]).write(reader.data_dir / str(first) / "session.xml")
    subject = xml[first].find("subject").get("id")
    labels = {c: next(t.label for t in get_reader("MAHNOB", reader.root, comparison=c).read_subject(subject)
                      if t.trial == first) for c in (">=", ">")}
    assert labels == {">=": 1, ">": 0}


def test_subjects_come_from_session_xml_and_the_rate_from_the_bdf_header(tmp_path):
    rng = np.random.default_rng(0)
    sessions = tmp_path / "MAHNOB" / "Sessions"
    for number, subject, rate in ((7, 12, 128.0), (3, 5, 128.0)):
        eeg = rng.normal(0.0, 10.0, size=(32, int(66 * rate)))
        write_bdf(sessions / str(number) / "Part_x_S_Trial1_emotion.bdf", eeg, rng, clip=None, rate=rate)
        write_session_xml(sessions / str(number) / "session.xml", subject, str(number), "a.avi", 6,
                          {"feltVlnc": "7", "feltArsl": "2"})
    reader = get_reader("MAHNOB", tmp_path / "MAHNOB" / "Sessions")  # the inner folder works too
    assert reader.subjects() == ["5", "12"]
    [trial] = reader.read_subject("12")
    assert trial.sampling_rate == 128.0 and trial.signal.shape == (32, 6 * 128) and trial.trial == 7
    assert "2 emotion session(s) of 2 subject(s) read" in reader.label_description()
    assert "skipped" not in reader.label_description()


@pytest.mark.parametrize("change, message", [
    (lambda p: p.write_text("<session feltVlnc='3'><subject id='1'/>"), "expected a well-formed session.xml"),
    (lambda p: p.write_text("<sessions><subject id='1'/></sessions>"), "expected a <session> root element"),
    (lambda p: p.write_text("<session feltVlnc='3'/>"), "expected a <subject id=...> element"),
])
def test_a_malformed_session_xml_is_one_error_naming_the_file(root, tmp_path, change, message, caplog):
    data = copy(root, tmp_path)
    target = data / "Sessions" / "4" / "session.xml"
    change(target)
    with pytest.raises(DatasetError, match=re.escape(f"{target}: {message}")):
        get_reader("MAHNOB", data).subjects()
    config = tiny_config(tmp_path, tmp_path, datasets=("MAHNOB",))
    config.save(tmp_path / "config.json")
    with caplog.at_level(logging.ERROR, logger="loso"):
        assert loso_main(["--config", str(tmp_path / "config.json"), "--local"]) == 2
    [error] = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert error.startswith("error: ") and f"{target}: {message}" in error


@pytest.mark.parametrize("change, message", [
    (lambda p: p.write_bytes(p.read_bytes()[:3000]), "expected a readable BDF file"),
    (lambda p: p.write_bytes(b"0" * 4096), "expected a readable BDF file"),
])
def test_a_broken_bdf_is_one_error_naming_it(root, tmp_path, change, message):
    data = copy(root, tmp_path)
    [target] = (data / "Sessions" / "2").glob("*.bdf")
    change(target)
    with pytest.raises(DatasetError, match=re.escape(f"{target}: {message}")):
        get_reader("MAHNOB", data).read_subject("1")
    assert len(get_reader("MAHNOB", data, skip_bad_trials=True).read_subject("2")) == 4  # other subjects unaffected


def test_mahnob_runs_through_loso_with_its_label_statement(root, tmp_path):
    config = tiny_config(root.parent, tmp_path, datasets=("MAHNOB",), num_epochs=1)
    config.save(tmp_path / "config.json")
    out = tmp_path / "out"
    assert loso_main(["--config", str(tmp_path / "config.json"), "--output", str(out), "--local"]) == 0
    assert pd.read_csv(out / "tables" / "per_subject.csv")["subject"].astype(str).tolist() == ["1", "2", "3"]
    manifest = json.loads((out / "run.json").read_text())
    assert "feltVlnc" in manifest["labels"]["MAHNOB"] and "3 folder(s) without a BDF" in manifest["labels"]["MAHNOB"]
    assert manifest["filters"]["MAHNOB"] == {"bandpass_hz": [0.3, 45.0], "notch_hz": 50.0}
    assert "20 film clips" in (out / "tables" / "PROTOCOL.md").read_text()
