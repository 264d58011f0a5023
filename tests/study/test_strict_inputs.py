"""Issue 23, reproduction 7: strict TOML types, allowed values in a stable order, a delimiter hint and
the row of a UTF-8 error (study reader and schema, spec loader). Each test failed on the code before."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bayes_stenosis.cli import app
from bayes_stenosis.errors import InputError
from bayes_stenosis.resources import resolve_spec
from bayes_stenosis.spec import load_spec
from bayes_stenosis.study import load_study
from bayes_stenosis.testing import write_study

runner = CliRunner()

CONTRAST = {"outcome": "ODI", "time": 4, "measure": "change", "direction": "new_minus_reference", "estimate": -2}


def _study(tmp_path: Path, **kwargs) -> Path:
    rows = {"contrasts.csv": [CONTRAST | {"se": 3}]}
    return write_study(tmp_path / "study", rows=rows, **kwargs)


def _one_line_error(target: Path) -> str:
    result = runner.invoke(app, ["data", "validate", str(target)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and len(result.output.splitlines()) == 1, result.output
    return result.output


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ("margin = 10", 'margin = "10"', "outcomes.ODI.margin"),
        ("scale_max = 100", 'scale_max = "100"', "outcomes.ODI.scale_max"),
        ("n_randomised = 20", 'n_randomised = "20"', "arms.reference_arm.n_randomised"),
        ("simulated = true", 'simulated = "true"', "study.simulated"),
    ],
)
def test_a_number_written_as_a_string_is_refused_not_coerced(tmp_path, old, new, key):
    folder = _study(tmp_path)
    toml = folder / "study.toml"
    assert old in toml.read_text()
    toml.write_text(toml.read_text().replace(old, new, 1))
    out = _one_line_error(folder)
    assert f"study.toml key {key}:" in out
    assert repr(new.split(" = ")[1].strip('"')) in out  # the offending value, as written


def test_spec_numbers_are_strict_too(tmp_path):
    text = resolve_spec("default").read_text()
    (line,) = re.findall(r"^draws = \d+$", text, flags=re.M)  # the [sampler] draws, a number
    value = line.split(" = ")[1]
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace(line, f'draws = "{value}"', 1))
    with pytest.raises(InputError) as err:
        load_spec(bad)
    assert err.value.field == "sampler.draws" and f"'{value}'" in str(err.value) and "without quotes" in str(err.value)


def test_a_union_of_a_word_and_a_number_names_both_and_drops_pydantic_tags(tmp_path):
    text = resolve_spec("default").read_text()
    start = text.index("correlations = [")
    line = text[start : text.index("\n", start)]
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace(line, 'correlations = ["uncertain", "0.5"]', 1))
    with pytest.raises(InputError) as err:
        load_spec(bad)
    assert err.value.field == "sensitivity.correlations.1"
    assert "should be 'uncertain' or a valid number (got '0.5')" in str(err.value)


def test_allowed_values_are_listed_in_the_declared_order(tmp_path):
    # with a set, the order changed from run to run (string hashing is randomised per process)
    names = ["VAS", "ODI", "RMDQ", "QBPDS", "NRS", "Z_other"]
    outcomes = {n: {"instrument": "other", "scale_max": 100, "margin": 10, "reference_sd": 16} for n in names}
    folder = write_study(tmp_path / "study", outcomes=outcomes, rows={"contrasts.csv": [CONTRAST | {"se": 3}]})
    text = (folder / "contrasts.csv").read_text()
    (folder / "contrasts.csv").write_text(text.replace("\nODI,", "\nSF36,"))
    out = _one_line_error(folder)
    assert "unknown outcome 'SF36' (study.toml has: VAS, ODI, RMDQ, QBPDS, NRS, Z_other)" in out


def test_a_semicolon_delimited_csv_gets_a_delimiter_hint(tmp_path):
    folder = _study(tmp_path)
    path = folder / "contrasts.csv"
    lines = path.read_text().splitlines()
    # what a spreadsheet with a decimal comma exports
    path.write_text("\n".join(line.replace(",", ";") for line in lines).replace("-2", "-2,5") + "\n")
    out = _one_line_error(folder)
    assert f"{path} row 1:" in out and "semicolon-delimited" in out and "unquoted comma" not in out


def test_a_utf8_error_names_the_row_of_a_csv(tmp_path):
    folder = _study(tmp_path)
    path = folder / "contrasts.csv"
    text = path.read_text().replace("TEST FIXTURE", "M\xfcller")
    path.write_bytes(text.encode("latin-1"))
    out = _one_line_error(folder)
    assert f"{path} row 2: not UTF-8 text: byte 0xfc" in out


def test_a_utf8_error_names_the_line_of_study_toml(tmp_path):
    folder = _study(tmp_path)
    path = folder / "study.toml"
    lines = path.read_text().splitlines()
    line = next(i for i, text in enumerate(lines, start=1) if text.startswith("title = "))
    lines[line - 1] = 'title = "M\xfcller"'
    path.write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    with pytest.raises(InputError) as err:
        load_study(folder)
    assert f"line {line}, character" in str(err.value) and "byte 0xfc" in str(err.value)
