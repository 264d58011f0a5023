"""study.writer: the TOML document and evidence CSVs every study-folder writer renders."""

from __future__ import annotations

import math
import tomllib

import numpy as np
import pandas as pd
import pytest

from bayes_stenosis.study import SCHEMAS, load_study
from bayes_stenosis.study.template import STUDY_TOML, TEMPLATE_LEVELS, template_files
from bayes_stenosis.study.writer import dumps_toml, evidence_csv, toml_value, write_folder


def test_dumps_toml_reads_back_exactly():
    doc = {
        "schema_version": 1,
        "study": {"id": "x", "title": 'quote " and \\ and \x7f', "simulated": True, "notes": ["a", "b"]},
        "arms": {"a": {"role": "new", "n": np.int64(3)}, "b": {"role": "reference", "sd": 0.1 + 0.2}},
    }
    text = dumps_toml(doc, "line one\nline two")
    assert text.startswith("# line one\n# line two\n")
    back = tomllib.loads(text)
    assert back["study"] == doc["study"]
    assert back["arms"]["a"]["n"] == 3 and back["arms"]["b"]["sd"] == 0.1 + 0.2
    assert "[arms]" not in text  # a table of tables gets no header of its own


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_toml_value_refuses_non_finite(bad):
    with pytest.raises(ValueError, match="non-finite"):
        toml_value(bad)


def test_evidence_csv_schema_order_and_header_only():
    frame = pd.DataFrame({"note": ["n"], "outcome": ["ODI"], "time": [4.0], "extra": [1]})
    assert evidence_csv("contrast", frame) == "outcome,time,note\nODI,4.0,n\n"
    assert evidence_csv("threshold") == ",".join(c.name for c in SCHEMAS["threshold"]) + "\n"


def test_template_is_the_empty_preset_and_loads(tmp_path):
    files = template_files()
    assert files["study.toml"] == STUDY_TOML and len(files) == 1 + len(TEMPLATE_LEVELS)
    write_folder(tmp_path / "t", files)
    study = load_study(tmp_path / "t")
    assert study.levels_present() == []
    with pytest.raises(FileExistsError):
        write_folder(tmp_path / "t", files, exclusive=True)
