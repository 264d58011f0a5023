"""Study-folder validation through the CLI: every kind of bad input exits 2 with ONE line naming the
exact file, the spreadsheet row (header = row 1) and the column (or the study.toml key); good input,
the bundled studies and the template validate. All CLI calls run in-process (CliRunner)."""

from __future__ import annotations

import csv as csvlib
import shutil
import tomllib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bayes_stenosis import __version__
from bayes_stenosis.cli import app
from bayes_stenosis.errors import InputError
from bayes_stenosis.resources import bundled_study_ids
from bayes_stenosis.study import EVIDENCE_FILES, SCHEMAS, STUDY_TOML, TEMPLATE_LEVELS, load_study, write_template
from bayes_stenosis.testing import TEST_SOURCE, ipd_truth, write_ipd_study, write_study

runner = CliRunner()

FIXTURE = TEST_SOURCE

HEADER = {level: ",".join(c.name for c in SCHEMAS[level]) for level in SCHEMAS}
ARM = "arm_summaries.csv"
CON = "contrasts.csv"
THR = "thresholds.csv"
IPD = "ipd.csv"

# Valid rows. The arm summaries never complete a follow-up cell in both arms, so they do not clash
# with the contrast at week 4.
ARM_ROWS = [
    "reference_arm,ODI,0,score,20,42,16,s,",
    "new_arm,ODI,0,score,20,41,15,s,",
    "reference_arm,ODI,8,score,19,35,17,s,",
]
CON_ROW = "ODI,4,change,new_minus_reference,-2,-8,4,0.95,,,,s,"
THR_ROW = "ODI,8,between,,>,0.05,,two_sample_t,,s,"
IPD_ROWS = ["p1,new_arm,ODI,0,40,s,", "p1,new_arm,ODI,4,35,s,", "p2,reference_arm,ODI,0,45,s,"]


def csv(level: str, *rows: str) -> str:
    return "\n".join([HEADER[level], *rows]) + "\n"


def records(level: str, *rows: str) -> list[dict[str, str]]:
    """CSV data lines as dicts for :func:`bayes_stenosis.testing.write_study`."""
    names = [c.name for c in SCHEMAS[level]]
    return [dict(zip(names, next(csvlib.reader([row])), strict=True)) for row in rows]


@pytest.fixture(scope="module")
def minimal_folder(tmp_path_factory) -> Path:
    """A minimal valid study folder (``testing.write_study``), written once and copied by :func:`study`."""
    folder = tmp_path_factory.mktemp("minimal") / "mini"
    write_study(
        folder,
        follow_up=(4.0, 8.0),
        rows={
            ARM: records("arm_summary", *ARM_ROWS),
            CON: records("contrast", CON_ROW),
            THR: records("threshold", THR_ROW),
        },
    )
    return folder


@pytest.fixture(scope="module")
def minimal_toml(minimal_folder) -> str:
    """The text of the minimal folder's ``study.toml``, for patching."""
    return (minimal_folder / "study.toml").read_text()


@pytest.fixture
def study(tmp_path, minimal_folder) -> Callable[..., Path]:
    """``study(**{file: content})``: a fresh copy of the minimal folder with files patched.

    ``content`` is text, bytes (written verbatim) or ``None`` (the file is deleted).
    """

    def make(files: dict[str, str | bytes | None] | None = None) -> Path:
        folder = tmp_path / "study"
        shutil.copytree(minimal_folder, folder)
        for name, content in (files or {}).items():
            path = folder / name
            if content is None:
                path.unlink()
            elif isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content)
        return folder

    return make


def validate(target: Path | str) -> tuple[int, str]:
    result = runner.invoke(app, ["data", "validate", str(target)])
    return result.exit_code, result.output


def assert_one_line_error(
    target: Path | str,
    location: str,
    *fragments: str,
) -> str:
    """Exit 2, exactly one line ``error: <location>: <message>``, the message containing ``fragments``."""
    code, out = validate(target)
    assert code == 2, out
    assert "Traceback" not in out, out
    lines = out.splitlines()
    assert len(lines) == 1, out
    prefix = f"error: {location}: "
    assert lines[0].startswith(prefix), f"expected {prefix!r}, got {lines[0]!r}"
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def at(folder: Path, name: str, row: int | None = None, column: str | None = None, key: str | None = None) -> str:
    """The location an error must name: the exact file, then ``row N, column X`` or ``key X``."""
    where = str(folder / name)
    if row is not None:
        where += f" row {row}, column {column}"
    if key is not None:
        where += f" key {key}"
    return where


# ---------------------------------------------------------------------------------------------
# the minimal folder itself is valid
# ---------------------------------------------------------------------------------------------


def test_minimal_folder_is_valid(study):
    folder = study()
    code, out = validate(folder)
    assert code == 0, out
    loaded = load_study(folder)
    assert loaded.evidence_by_cell().set_index("time").loc[4.0, "evidence"] == "contrast"


# ---------------------------------------------------------------------------------------------
# CSV errors: file, row and column
# ---------------------------------------------------------------------------------------------

# id: (file, content, row, column, message fragment). Data line k is spreadsheet row k + 1.
CSV_ERRORS = {
    "unknown column": (
        ARM,
        csv("arm_summary", *ARM_ROWS).replace(",note\n", ",comment\n", 1),
        1,
        "comment",
        "unknown column",
    ),
    "missing required column": (
        ARM,
        "arm,outcome,time,kind,n,mean,source,note\nreference_arm,ODI,0,score,20,42,s,\n",
        1,
        "sd",
        "required column is missing",
    ),
    "missing required column (contrast estimate)": (
        CON,
        "outcome,time,measure,direction,se,source\nODI,4,change,new_minus_reference,3,s\n",
        1,
        "estimate",
        "required column is missing",
    ),
    "non-numeric mean on the 3rd data line": (
        ARM,
        csv("arm_summary", ARM_ROWS[0], ARM_ROWS[1], "reference_arm,ODI,8,score,19,forty,17,s,"),
        4,
        "mean",
        "not a number (got 'forty')",
    ),
    "non-numeric time": (
        THR,
        csv("threshold", "ODI,week 8,between,,>,0.05,,two_sample_t,,s,"),
        2,
        "time",
        "not a number",
    ),
    "non-numeric contrast estimate": (
        CON,
        csv("contrast", "ODI,4,change,new_minus_reference,n.s.,,,,1.2,,,s,"),
        2,
        "estimate",
        "not a number",
    ),
    "zero sd": (ARM, csv("arm_summary", ARM_ROWS[0], "new_arm,ODI,0,score,20,41,0,s,"), 3, "sd", "must be > 0"),
    "negative sd": (
        ARM,
        csv("arm_summary", ARM_ROWS[0], ARM_ROWS[1], "reference_arm,ODI,8,score,19,35,-2.5,s,"),
        4,
        "sd",
        "must be > 0 (got -2.5)",
    ),
    "zero n": (ARM, csv("arm_summary", "new_arm,ODI,0,score,0,41,15,s,"), 2, "n", "must be > 0"),
    "negative n": (ARM, csv("arm_summary", ARM_ROWS[0], "new_arm,ODI,0,score,-20,41,15,s,"), 3, "n", "must be > 0"),
    "score mean above the scale": (
        ARM,
        csv("arm_summary", ARM_ROWS[0], ARM_ROWS[1], "reference_arm,ODI,8,score,19,140,17,s,"),
        4,
        "mean",
        "outside the scale range 0 to 100",
    ),
    "score mean below the scale": (
        ARM,
        csv("arm_summary", "new_arm,ODI,0,score,20,-1,15,s,"),
        2,
        "mean",
        "outside the scale range",
    ),
    "ipd value outside the scale": (
        IPD,
        csv("ipd", IPD_ROWS[0], IPD_ROWS[1], "p2,reference_arm,ODI,0,101,s,"),
        4,
        "value",
        "outside the scale range 0 to 100 (got 101)",
    ),
    "unknown arm": (ARM, csv("arm_summary", ARM_ROWS[0], "placebo,ODI,0,score,20,41,15,s,"), 3, "arm", "unknown arm"),
    "unknown arm (within-arm threshold)": (
        THR,
        csv("threshold", THR_ROW, "ODI,8,within,placebo,<,0.05,improvement,paired_t,,s,"),
        3,
        "arm",
        "unknown arm 'placebo'",
    ),
    "unknown outcome": (
        ARM,
        csv("arm_summary", *ARM_ROWS[:2], "new_arm,RMDQ,0,score,20,10,5,s,"),
        4,
        "outcome",
        "unknown outcome 'RMDQ'",
    ),
    "unknown outcome (contrast)": (
        CON,
        csv("contrast", "VAS,4,change,new_minus_reference,-2,-8,4,0.95,,,,s,"),
        2,
        "outcome",
        "unknown outcome",
    ),
    "unknown time": (
        ARM,
        csv("arm_summary", ARM_ROWS[0], "new_arm,ODI,6,score,20,40,16,s,"),
        3,
        "time",
        "unknown time 6",
    ),
    "baseline time in a threshold": (
        THR,
        csv("threshold", THR_ROW, "ODI,0,between,,>,0.05,,two_sample_t,,s,"),
        3,
        "time",
        "unknown time 0",
    ),
    "duplicate arm-summary cell": (
        ARM,
        csv("arm_summary", *ARM_ROWS, ARM_ROWS[1].replace(",41,15,", ",43,14,")),
        5,
        "arm",
        "duplicate cell",
    ),
    "duplicate contrast cell": (CON, csv("contrast", CON_ROW, CON_ROW), 3, "outcome", "already given in row 2"),
    "duplicate threshold cell": (THR, csv("threshold", THR_ROW, THR_ROW), 3, "outcome", "duplicate cell"),
    "CI that does not contain its estimate": (
        CON,
        csv("contrast", "ODI,4,change,new_minus_reference,5,-8,4,0.95,,,,s,"),
        2,
        "estimate",
        "does not contain the estimate 5",
    ),
    "contrast p-value 0": (
        CON,
        csv("contrast", "ODI,4,change,new_minus_reference,-2,,,,,0,,s,"),
        2,
        "p_value",
        "must be in (0, 1] (got 0)",
    ),
    "contrast p-value 1.5": (
        CON,
        csv("contrast", "ODI,4,change,new_minus_reference,-2,,,,,1.5,,s,"),
        2,
        "p_value",
        "must be in (0, 1] (got 1.5)",
    ),
    "threshold p-value 0": (
        THR,
        csv("threshold", "ODI,8,between,,<,0.05,favours_new,two_sample_t,0,s,"),
        2,
        "p_value",
        "must be in (0, 1]",
    ),
    "threshold p-value 1.5": (
        THR,
        csv("threshold", "ODI,8,between,,>,0.05,,two_sample_t,1.5,s,"),
        2,
        "p_value",
        "must be in (0, 1]",
    ),
    "missing source": (CON, csv("contrast", CON_ROW.replace(",s,", ",,")), 2, "source", "a value is required"),
    "choice outside its list": (
        ARM,
        csv("arm_summary", "new_arm,ODI,0,raw,20,41,15,s,"),
        2,
        "kind",
        "must be one of score, change",
    ),
}


@pytest.mark.parametrize("case", list(CSV_ERRORS))
def test_bad_csv_names_file_row_and_column(study, case):
    name, content, row, column, fragment = CSV_ERRORS[case]
    folder = study({name: content})
    assert_one_line_error(folder, at(folder, name, row, column), fragment)


def test_bad_value_after_crlf_and_bom_is_still_located(study):
    content = csv("arm_summary", ARM_ROWS[0], ARM_ROWS[1], "reference_arm,ODI,8,score,19,35,0,s,")
    folder = study({ARM: b"\xef\xbb\xbf" + content.replace("\n", "\r\n").encode()})
    assert_one_line_error(folder, at(folder, ARM, 4, "sd"), "must be > 0")


def test_quoted_line_break_counts_as_one_spreadsheet_row(study):
    content = csv("arm_summary", 'reference_arm,ODI,0,score,20,42,16,s,"two\nlines"', "new_arm,ODI,0,score,20,41,-1,s,")
    folder = study({ARM: content})
    assert_one_line_error(folder, at(folder, ARM, 3, "sd"), "must be > 0")


def test_two_evidence_levels_for_one_cell(study):
    complete = [
        f'{arm},ODI,{t},score,20,{mean},16,"{FIXTURE}",'
        for arm, t, mean in (
            ("reference_arm", 0, 42),
            ("reference_arm", 4, 36),
            ("new_arm", 0, 41),
            ("new_arm", 4, 33),
        )
    ]
    folder = study({ARM: csv("arm_summary", *complete)})  # the minimal contrasts.csv covers ODI week 4
    assert_one_line_error(folder, at(folder, CON, 2, "outcome"), "two evidence levels", "arm_summaries.csv")


def test_two_evidence_levels_ipd_and_contrast(study):
    folder = study({IPD: csv("ipd", *IPD_ROWS), ARM: None})
    assert_one_line_error(folder, at(folder, CON, 2, "outcome"), "two evidence levels", "ipd.csv")


@pytest.mark.parametrize("name", [ARM, CON, THR, IPD])
def test_empty_csv_file(study, name):
    folder = study({name: b""})
    assert_one_line_error(folder, at(folder, name), "file is empty")


def test_not_utf8_csv(study):
    folder = study({CON: csv("contrast", CON_ROW.replace(",s,", ",M\xfcller,")).encode("latin-1")})
    # the row of the bad byte (issue 23: it used to say only "not UTF-8")
    assert_one_line_error(folder, f"{folder / CON} row 2", "not UTF-8", "byte 0xfc")


def test_unknown_evidence_file(study):
    folder = study({"extra.csv": "a,b\n1,2\n"})
    assert_one_line_error(folder, at(folder, "extra.csv"), "unknown evidence file")


# ---------------------------------------------------------------------------------------------
# study.toml and folder errors: file and key
# ---------------------------------------------------------------------------------------------


def test_study_toml_missing(study):
    folder = study({"study.toml": None})
    assert_one_line_error(folder, at(folder, "study.toml"), "file not found")


def test_study_folder_missing(tmp_path):
    missing = tmp_path / "nowhere"
    assert_one_line_error(missing, str(missing), "study folder not found")


def test_unknown_bundled_id():
    code, out = validate("no_such_study")
    assert code == 2 and len(out.splitlines()) == 1 and "no_such_study: study folder not found" in out, out


def test_study_toml_empty(study):
    folder = study({"study.toml": b""})
    assert_one_line_error(folder, at(folder, "study.toml"), "file is empty")


def test_study_toml_unreadable(study, minimal_toml):
    folder = study({"study.toml": minimal_toml.replace("[times]", "[times")})
    assert_one_line_error(folder, at(folder, "study.toml"), "unreadable TOML", "line ")


TOML_ERRORS = {
    # id: (old, new, key, fragment)
    "unknown key in [study]": (
        'title = "test study"',
        'title = "x"\nsponsor = "x"',
        "study.sponsor",
        "unknown key",
    ),
    "unknown top-level key": ("schema_version = 1", 'schema_version = 1\nlicence = "x"', "licence", "unknown key"),
    "unknown key in an arm": ('role = "new"', 'role = "new"\ndose = 100', "arms.new_arm.dose", "unknown key"),
    "unknown key in an outcome": ("margin = 10", "margin = 10\nmcid = 10", "outcomes.ODI.mcid", "unknown key"),
    "negative margin": ("margin = 10", "margin = -10", "outcomes.ODI.margin", "greater than 0"),
    "wrong role": ('role = "new"', 'role = "active"', "arms.new_arm.role", "'active'"),
    "follow-up not a list": ("follow_up = [4.0, 8.0]", 'follow_up = "4"', "times.follow_up", "valid list"),
    "infinite margin": ("margin = 10", "margin = inf", "outcomes.ODI.margin", "finite number"),
    "nan scale bound": ("scale_max = 100", "scale_max = nan", "outcomes.ODI.scale_max", "finite number"),
    # cross-key rules name the key to fix, not the table
    "scale bounds reversed": ("scale_max = 100", "scale_max = -1", "outcomes.ODI.scale_max", "greater than scale_min"),
    "repeated follow-up": ("follow_up = [4.0, 8.0]", "follow_up = [4.0, 4.0]", "times.follow_up", "distinct"),
}


def test_margin_without_its_source_names_the_source_key(study, minimal_toml):
    text = "\n".join(line for line in minimal_toml.splitlines() if not line.startswith("margin_source"))
    folder = study({"study.toml": text})
    assert_one_line_error(folder, at(folder, "study.toml", key="outcomes.ODI.margin_source"), "margin needs")


def test_the_study_toml_path_is_accepted_for_its_folder(study):
    folder = study()
    code, out = validate(folder / "study.toml")
    assert code == 0, out


@pytest.mark.parametrize("case", list(TOML_ERRORS))
def test_bad_study_toml_names_the_key(study, minimal_toml, case):
    old, new, key, fragment = TOML_ERRORS[case]
    assert old in minimal_toml
    folder = study({"study.toml": minimal_toml.replace(old, new, 1)})
    assert_one_line_error(folder, at(folder, "study.toml", key=key), fragment)


def test_study_toml_missing_key(study, minimal_toml):
    text = "\n".join(line for line in minimal_toml.splitlines() if not line.startswith("scale_source"))
    folder = study({"study.toml": text})
    assert_one_line_error(folder, at(folder, "study.toml", key="outcomes.ODI.scale_source"), "required key is missing")


# ---------------------------------------------------------------------------------------------
# accepted input
# ---------------------------------------------------------------------------------------------


def test_bom_and_crlf_are_accepted(study):
    content = csv("arm_summary", *ARM_ROWS).replace("\n", "\r\n").encode("utf-8")
    folder = study({ARM: b"\xef\xbb\xbf" + content})
    code, out = validate(folder)
    assert code == 0, out
    frame = load_study(folder).evidence["arm_summary"]
    assert list(frame.columns[:2]) == ["arm", "outcome"]  # the BOM is not part of the first name
    assert frame["mean"].tolist() == [42.0, 41.0, 35.0]
    assert frame["note"].isna().all()  # no stray "\r"
    assert frame["row"].tolist() == [2, 3, 4]


@pytest.mark.parametrize("name", [ARM, CON, THR, IPD])
def test_header_only_csv_is_accepted(study, name):
    level = {v: k for k, v in EVIDENCE_FILES.items()}[name]
    folder = study({name: HEADER[level] + "\n"})
    code, out = validate(folder)
    assert code == 0, out
    assert len(load_study(folder).evidence[level]) == 0


def test_optional_columns_may_be_left_out(study):
    folder = study(
        {CON: "outcome,time,measure,direction,estimate,se,source\nODI,4,change,new_minus_reference,-2,3,s\n"}
    )
    code, out = validate(folder)
    assert code == 0, out


def test_all_empty_placeholder_rows_are_accepted(study):
    rows = [
        f"{arm},ODI,{t},score,,,,NOT PUBLIC: placeholder," for arm in ("new_arm", "reference_arm") for t in (0, 4, 8)
    ]
    folder = study({ARM: csv("arm_summary", *rows)})
    code, out = validate(folder)
    assert code == 0, out
    assert "incomplete" not in out  # placeholders are not incomplete facts
    loaded = load_study(folder)
    assert len(loaded.usable_arm_summaries()) == 0 and len(loaded.incomplete_arm_summaries()) == 0


def test_farpour2022_placeholders_are_accepted_in_a_copy(tmp_path):
    copy = tmp_path / "farpour_copy"
    shutil.copytree(load_study("farpour2022").folder, copy)
    code, out = validate(copy)
    assert code == 0, out
    assert "incomplete" not in out


# ---------------------------------------------------------------------------------------------
# bundled studies
# ---------------------------------------------------------------------------------------------


def test_all_five_studies_are_bundled():
    assert {"farpour2022", "farpour2021", "podichetty2004", "tafazal2007", "rahimzadeh2024"} <= set(bundled_study_ids())


@pytest.mark.parametrize("study_id", bundled_study_ids())
def test_bundled_study_validates(study_id):
    code, out = validate(study_id)
    assert code == 0, out
    loaded = load_study(study_id)
    assert not loaded.simulated
    for outcome in loaded.meta.outcomes.values():  # every margin and reference SD has a source
        assert outcome.margin is None or outcome.margin_source
        assert outcome.reference_sd is None or outcome.reference_sd_source
    for level, frame in loaded.evidence.items():  # every evidence row has a source
        assert frame["source"].notna().all(), level
        assert not frame["source"].str.startswith("TEST FIXTURE").any(), level


def test_flagship_layout():
    study = load_study("farpour2022")
    arm = study.evidence["arm_summary"]
    assert len(arm) == 24
    assert arm[["n", "mean", "sd"]].isna().all().all()
    thr = study.evidence["threshold"]
    assert (thr.comparison == "between").sum() == 8
    assert (thr.comparison == "within").sum() == 16
    cells = study.evidence_by_cell()
    assert len(cells) == 8
    assert (cells.evidence == "threshold").all()
    assert not cells.thresholds_superseded.any()
    assert study.meta.study.n_randomised_total == 39
    assert all(a.n_randomised is None for a in study.meta.arms.values())


def test_entered_arm_summaries_supersede_the_thresholds(tmp_path):
    copy = tmp_path / "farpour_copy"
    shutil.copytree(load_study("farpour2022").folder, copy)
    path = copy / ARM
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    odi = (table.outcome == "ODI") & table.time.isin(["0", "4"])
    assert odi.sum() == 4  # both arms, baseline and week 4
    table.loc[odi, "n"] = "19"
    table.loc[odi, "mean"] = ["45" if t == "0" else "35" for t in table.loc[odi, "time"]]
    table.loc[odi, "sd"] = "15"
    table.loc[odi, "source"] = "TEST FIXTURE: simulated, not Farpour data"
    table.to_csv(path, index=False)
    code, out = validate(copy)
    assert code == 0, out
    assert "threshold rows superseded" in out
    cells = load_study(copy).evidence_by_cell().set_index(["time", "outcome"])
    assert cells.loc[(4.0, "ODI"), "evidence"] == "arm_summary"
    assert bool(cells.loc[(4.0, "ODI"), "thresholds_superseded"])
    others = cells.drop(index=(4.0, "ODI"))
    assert (others.evidence == "threshold").all() and not others.thresholds_superseded.any()


def test_podichetty2004_uses_the_derived_contrast():
    study = load_study("podichetty2004")
    cells = study.evidence_by_cell()
    assert cells[["time", "outcome", "evidence"]].values.tolist() == [[6.0, "VAS", "contrast"]]
    assert study.levels_present() == ["contrast"]
    assert len(study.incomplete_arm_summaries()) == 4  # printed means without n or SD: kept, not used
    assert study.evidence["arm_summary"]["n"].isna().all()
    con = study.evidence["contrast"].iloc[0]
    assert con.estimate == pytest.approx(-2.9 - (-2.4))
    assert con.p_value == 0.4382 and pd.isna(con.df)
    assert con.source.startswith("derived:")
    assert study.arm_sizes() == {"calcitonin": 36, "placebo": 19}


def test_tafazal2007_exact_p_values_as_thresholds():
    study = load_study("tafazal2007")
    thr = study.evidence["threshold"]
    assert sorted(thr.outcome) == ["ODI", "VAS_leg"]
    assert (thr.time == 4).all() and (thr.relation == ">").all() and (thr.p_value == 0.51).all()
    assert study.times == [4.0] and study.meta.times.baseline == 0
    assert not (study.folder / CON).exists()


def test_farpour2021_has_no_evidence_file():
    study = load_study("farpour2021")
    assert not any((study.folder / name).exists() for name in EVIDENCE_FILES.values())
    assert study.levels_present() == []
    assert (study.evidence_by_cell().evidence == "none").all()
    assert study.times == [2.0, 4.0, 8.0]
    assert study.arm_sizes() == {"steroid_calcitonin": 14, "steroid": 17}
    result = runner.invoke(app, ["data", "list"])
    line = next(line for line in result.output.splitlines() if line.startswith("│ farpour2021"))
    assert "none usable" in line


def test_rahimzadeh2024_direction_of_the_pain_statement():
    study = load_study("rahimzadeh2024")
    assert study.new_arm == "transforaminal" and study.reference_arm == "caudal"
    thr = study.evidence["threshold"].set_index("outcome")
    assert thr.loc["VAS", "relation"] == "<" and thr.loc["VAS", "direction"] == "favours_reference"
    assert thr.loc["ODI", "relation"] == ">" and pd.isna(thr.loc["ODI", "direction"])
    assert study.times == [26.0]


# ---------------------------------------------------------------------------------------------
# template, list, version
# ---------------------------------------------------------------------------------------------


def test_template_writes_a_valid_folder(tmp_path):
    target = tmp_path / "new_study"
    result = runner.invoke(app, ["data", "template", str(target)])
    assert result.exit_code == 0, result.output
    assert [EVIDENCE_FILES[level] for level in TEMPLATE_LEVELS] == [ARM, CON, THR]
    assert sorted(p.name for p in target.iterdir()) == sorted(["study.toml", ARM, CON, THR])
    for level in TEMPLATE_LEVELS:  # header only, exactly the schema's columns in order
        assert (target / EVIDENCE_FILES[level]).read_text() == HEADER[level] + "\n"
    code, out = validate(target)
    assert code == 0, out
    study = load_study(target)
    assert study.new_arm == "new_arm" and study.reference_arm == "reference_arm"
    assert study.outcomes == ["ODI"] and study.outcome("ODI").margin_source
    assert all(len(frame) == 0 for frame in study.evidence.values())
    again = runner.invoke(app, ["data", "template", str(target)])  # a second call into the same folder
    assert again.exit_code == 2, again.output
    assert "not empty" in again.output and len(again.output.splitlines()) == 1


def test_template_refuses_a_non_empty_folder(tmp_path):
    target = tmp_path / "taken"
    target.mkdir()
    (target / "study.toml").write_text("keep me\n")
    result = runner.invoke(app, ["data", "template", str(target)])
    assert result.exit_code == 2, result.output
    assert len(result.output.splitlines()) == 1
    assert result.output.startswith(f"error: {target}: "), result.output
    assert (target / "study.toml").read_text() == "keep me\n"  # never overwritten
    assert sorted(p.name for p in target.iterdir()) == ["study.toml"]
    with pytest.raises(InputError) as info:
        write_template(target)
    assert info.value.path == target


def test_template_accepts_an_existing_empty_folder(tmp_path):
    write_template(tmp_path)
    assert load_study(tmp_path).id == "my_study"


def test_template_comments_every_key():
    previous = ""
    for line in STUDY_TOML.splitlines():
        text = line.strip()
        if text and not text.startswith(("#", "[", "]", '"')):  # a key (not a comment, table or array item)
            assert "#" in text or previous.startswith("#"), f"template key without a comment: {line!r}"
        previous = text
    data = tomllib.loads(STUDY_TOML)
    assert data["outcomes"]["ODI"]["margin"] == 10
    assert "Ostelo" in data["outcomes"]["ODI"]["margin_source"]
    assert "source" in STUDY_TOML.lower()


def test_data_list_shows_every_bundled_study():
    result = runner.invoke(app, ["data", "list"])
    assert result.exit_code == 0, result.output
    for study_id in bundled_study_ids():
        assert study_id in result.output


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"bayes-stenosis {__version__}"


# ---------------------------------------------------------------------------------------------
# loader problems found in review, now fixed
# ---------------------------------------------------------------------------------------------


def test_row_number_after_a_blank_line(study):
    content = csv("arm_summary", ARM_ROWS[0]) + "\n" + "new_arm,ODI,0,score,20,41,-1,s,\n"
    folder = study({ARM: content})  # the bad row is spreadsheet row 4 (row 3 is blank)
    assert_one_line_error(folder, at(folder, ARM, 4, "sd"), "must be > 0")


def test_bom_only_csv_is_an_empty_file(study):
    folder = study({THR: b"\xef\xbb\xbf"})
    assert_one_line_error(folder, at(folder, THR), "file is empty")


def test_unquoted_comma_is_reported_as_a_field_count_problem(study):
    folder = study({THR: csv("threshold", "ODI,8,between,,>,0.05,,two_sample_t,,Smith, table 2,")})
    line = assert_one_line_error(folder, at(folder, THR) + " row 2")
    assert "column time" not in line


def test_validate_runs_the_checks_fit_runs(study, minimal_toml):
    """`data validate` refuses what `fit` would refuse before sampling (here: outcomes with different
    directions, which the model does not take yet), with the same one-line error."""
    second = minimal_toml[minimal_toml.index("[outcomes.ODI]") :].replace("ODI", "RMDQ")
    mixed = minimal_toml + "\n" + second.replace('"lower_is_better"', '"higher_is_better"')
    folder = study({"study.toml": mixed})
    assert_one_line_error(folder, at(folder, "study.toml", key="outcomes"), "share one direction")


# ipd.csv damaged after it was written from simulated patients (a very wide scale range: no score clipped)
@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda df: df.assign(value=np.where((df.patient == "ref_002") & (df.time == 0), "", df.value)), "baseline"),
        (lambda df: df[~((df.patient == "new_003") & (df.time == 0))], "no baseline row"),
        (lambda df: df[~((df.outcome == "RMDQ") & (df.arm == "new_arm"))], "one arm only"),
    ],
    ids=["empty baseline", "absent baseline", "outcome in one arm"],
)
def test_bad_ipd_inputs_one_line_errors(tmp_path, edit, message):
    folder = write_ipd_study(tmp_path / "bad", ipd_truth(n=5), seed=1)
    df = pd.read_csv(folder / "ipd.csv", keep_default_na=False, dtype=str)
    df["time"] = df["time"].astype(float)
    edit(df).to_csv(folder / "ipd.csv", index=False)
    result = CliRunner().invoke(app, ["data", "validate", str(folder)])
    assert result.exit_code == 2
    text = result.output.strip()
    assert len(text.splitlines()) == 1 and "ipd.csv" in text and message in text and "row" in text
