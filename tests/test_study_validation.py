"""Every kind of bad input gives exit code 2 and one line naming the file, row and field."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
from helpers import write_study
from typer.testing import CliRunner

from bayes_stenosis.cli import app
from bayes_stenosis.resources import bundled_study_ids
from bayes_stenosis.study import load_study

runner = CliRunner()

ARM_HEADER = "arm,outcome,time,kind,n,mean,sd,source,note\n"
CON_HEADER = "outcome,time,measure,direction,estimate,ci_low,ci_high,ci_level,se,p_value,df,source,note\n"
THR_HEADER = "outcome,time,comparison,arm,relation,alpha,direction,test,p_value,source,note\n"
GOOD_ARM = "reference_arm,ODI,0,score,20,40,16,s,\n"
GOOD_CON = "ODI,4,change,new_minus_reference,-2,-8,4,0.95,,,,s,\n"


@pytest.fixture
def folder(tmp_path):
    return write_study(tmp_path / "study")


def _validate(path):
    result = runner.invoke(app, ["data", "validate", str(path)])
    return result.exit_code, result.output.strip()


def _assert_error(path, file_name, row, field):
    code, out = _validate(path)
    assert code == 2, out
    assert len(out.splitlines()) == 1, out
    assert file_name in out, out
    if row is not None:
        assert f"row {row}," in out, out
    if field is not None:
        assert f" {field}:" in out, out
    return out


CSV_CASES = {
    # name: (file, content, row, column)
    "unknown column": ("arm_summaries.csv", ARM_HEADER.replace("note", "comment") + GOOD_ARM, 1, "column comment"),
    "missing required column": (
        "arm_summaries.csv",
        ARM_HEADER.replace("sd,", "") + "reference_arm,ODI,0,score,20,40,s,\n",
        1,
        "column sd",
    ),
    "non-numeric value": (
        "arm_summaries.csv",
        ARM_HEADER + GOOD_ARM + "new_arm,ODI,0,score,20,forty,16,s,\n",
        3,
        "column mean",
    ),
    "zero sd": ("arm_summaries.csv", ARM_HEADER + GOOD_ARM + "new_arm,ODI,0,score,20,40,0,s,\n", 3, "column sd"),
    "negative sd": ("arm_summaries.csv", ARM_HEADER + "new_arm,ODI,0,score,20,40,-2.1,s,\n", 2, "column sd"),
    "zero n": (
        "arm_summaries.csv",
        ARM_HEADER + GOOD_ARM + GOOD_ARM.replace("reference_arm", "new_arm").replace(",20,", ",0,"),
        3,
        "column n",
    ),
    "mean outside scale": (
        "arm_summaries.csv",
        ARM_HEADER + GOOD_ARM + "new_arm,ODI,0,score,20,140,16,s,\n",
        3,
        "column mean",
    ),
    "unknown arm": ("arm_summaries.csv", ARM_HEADER + "placebo,ODI,0,score,20,40,16,s,\n", 2, "column arm"),
    "unknown outcome": (
        "arm_summaries.csv",
        ARM_HEADER + GOOD_ARM + "new_arm,RMDQ,0,score,20,10,5,s,\n",
        3,
        "column outcome",
    ),
    "unknown time": (
        "arm_summaries.csv",
        ARM_HEADER + GOOD_ARM + "new_arm,ODI,6,score,20,40,16,s,\n",
        3,
        "column time",
    ),
    "duplicate cell": (
        "arm_summaries.csv",
        ARM_HEADER + GOOD_ARM + GOOD_ARM + GOOD_ARM.replace("reference", "new"),
        3,
        "column arm",
    ),
    "CI without its estimate": (
        "contrasts.csv",
        CON_HEADER + "ODI,4,change,new_minus_reference,5,-8,4,0.95,,,,s,\n",
        2,
        "column estimate",
    ),
    "p-value zero": (
        "contrasts.csv",
        CON_HEADER + "ODI,4,change,new_minus_reference,-2,,,,,0,,s,\n",
        2,
        "column p_value",
    ),
    "p-value above one": (
        "contrasts.csv",
        CON_HEADER + "ODI,4,change,new_minus_reference,-2,,,,,1.5,,s,\n",
        2,
        "column p_value",
    ),
    "threshold unknown outcome": (
        "thresholds.csv",
        THR_HEADER + "VAS,4,between,,>,0.05,,two_sample_t,,s,\n",
        2,
        "column outcome",
    ),
    "missing source": ("contrasts.csv", CON_HEADER + GOOD_CON.replace(",s,", ",,"), 2, "column source"),
}


@pytest.mark.parametrize("case", list(CSV_CASES))
def test_bad_csv_is_one_line_with_file_row_and_column(folder, case):
    name, content, row, field = CSV_CASES[case]
    (folder / name).write_text(content)
    _assert_error(folder, name, row, field)


def test_empty_file(folder):
    (folder / "contrasts.csv").write_text("")
    out = _assert_error(folder, "contrasts.csv", None, None)
    assert "empty" in out


def test_two_evidence_levels_for_one_cell(folder):
    rows = ARM_HEADER + "".join(
        f"{arm},ODI,{t},score,20,{40 - t},16,s,\n" for arm in ("reference_arm", "new_arm") for t in (0, 4)
    )
    (folder / "arm_summaries.csv").write_text(rows)
    (folder / "contrasts.csv").write_text(CON_HEADER + GOOD_CON)
    out = _assert_error(folder, "contrasts.csv", 2, "column outcome")
    assert "two evidence levels" in out


def test_missing_study_toml_and_missing_folder(folder, tmp_path):
    (folder / "study.toml").unlink()
    _assert_error(folder, "study.toml", None, None)
    code, out = _validate(tmp_path / "nowhere")
    assert code == 2 and "nowhere" in out and "not found" in out


def test_unreadable_toml(folder):
    (folder / "study.toml").write_text("[study\nid = 1\n")
    out = _assert_error(folder, "study.toml", None, None)
    assert "unreadable TOML" in out


def test_unknown_key_in_study_toml(folder):
    path = folder / "study.toml"
    path.write_text(path.read_text().replace('title = "test study"', 'title = "test study"\nsponsor = "x"'))
    out = _assert_error(folder, "study.toml", None, None)
    assert "key study.sponsor" in out and "unknown key" in out


def test_bom_and_crlf_are_accepted(folder):
    content = (ARM_HEADER + GOOD_ARM).replace("\n", "\r\n").encode("utf-8")
    (folder / "arm_summaries.csv").write_bytes(b"\xef\xbb\xbf" + content)
    code, out = _validate(folder)
    assert code == 0, out
    study = load_study(folder)
    assert study.evidence["arm_summary"]["mean"].tolist() == [40.0]


def test_header_only_csv_is_accepted(folder):
    (folder / "thresholds.csv").write_text(THR_HEADER)
    assert _validate(folder)[0] == 0


@pytest.mark.parametrize("study_id", bundled_study_ids())
def test_bundled_studies_validate(study_id):
    code, out = _validate(study_id)
    assert code == 0, out


def test_flagship_layout():
    study = load_study("farpour2022")
    arm = study.evidence["arm_summary"]
    assert len(arm) == 24 and arm[["n", "mean", "sd"]].isna().all().all()
    thr = study.evidence["threshold"]
    assert (thr.comparison == "between").sum() == 8 and (thr.comparison == "within").sum() == 16
    cells = study.evidence_by_cell()
    assert len(cells) == 8 and set(cells.evidence) == {"threshold"}
    assert study.meta.study.n_randomised_total == 39
    assert all(a.n_randomised is None for a in study.meta.arms.values())


def test_entered_arm_summaries_supersede_the_thresholds(tmp_path):
    copy = tmp_path / "farpour_copy"
    shutil.copytree(load_study("farpour2022").folder, copy)
    path = copy / "arm_summaries.csv"
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    odi = (table.outcome == "ODI") & table.time.isin(["0", "4"])
    table.loc[odi, "n"] = "19"
    table.loc[odi, "mean"] = ["45" if t == "0" else "35" for t in table.loc[odi, "time"]]
    table.loc[odi, "sd"] = "15"
    table.loc[odi, "source"] = "TEST FIXTURE: simulated, not Farpour data"
    table.to_csv(path, index=False)
    cells = load_study(copy).evidence_by_cell().set_index(["time", "outcome"])
    assert cells.loc[(4.0, "ODI"), "evidence"] == "arm_summary"
    assert bool(cells.loc[(4.0, "ODI"), "thresholds_superseded"])
    assert cells.loc[(8.0, "ODI"), "evidence"] == "threshold"


def test_template_validates_and_is_never_overwritten(tmp_path):
    target = tmp_path / "new_study"
    assert runner.invoke(app, ["data", "template", str(target)]).exit_code == 0
    assert _validate(target)[0] == 0
    second = runner.invoke(app, ["data", "template", str(target)])
    assert second.exit_code == 2 and "not an empty folder" in second.output


def test_data_list_and_version():
    result = runner.invoke(app, ["data", "list"])
    assert result.exit_code == 0
    for study_id in bundled_study_ids():
        assert study_id in result.output
    version = runner.invoke(app, ["--version"])
    assert version.exit_code == 0 and "bayes-stenosis" in version.output
