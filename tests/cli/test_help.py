"""The command line's help and choices: prior sets, samplers and export formats listed (with shell
completion of --prior), fit's options in panels, "[sensitivity]" not eaten by rich markup; and the
likelihood export for metafor."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from bayes_stenosis.cli import app
from bayes_stenosis.cli.common import bundled_prior_sets, complete_prior

runner = CliRunner()
WIDE = {"COLUMNS": "200", "TERM": "dumb"}


def help_text(*command: str) -> str:
    result = runner.invoke(app, [*command, "--help"], env=WIDE)
    assert result.exit_code == 0, result.output
    return result.output


def test_fit_help_lists_choices_in_panels():
    text = help_text("fit")
    for panel in ("Model and prior", "Sampler", "Output", "While running"):
        assert panel in text, panel
    assert "<nutpie|pymc>" in text
    assert bundled_prior_sets() == [
        "weakly_informative",
        "small_difference",
        "sceptical_of_equivalence",
        "enthusiastic",
        "vague",
    ]
    assert "weakly_informative | small_difference | sceptical_of_equivalence | enthusiastic | vague" in text
    assert complete_prior("sc") == ["sceptical_of_equivalence"] and complete_prior("x") == []


def test_unknown_sampler_is_refused_before_any_work(tmp_path):
    result = runner.invoke(app, ["fit", "--sampler", "stan", "--out", str(tmp_path / "o")], env=WIDE)
    assert result.exit_code == 2 and "nutpie" in result.output
    assert not (tmp_path / "o").exists()


def test_sensitivity_help_keeps_its_square_brackets():
    assert "the spec's [sensitivity] table" in help_text("sensitivity")


def test_export_formats_are_listed_and_checked(pristine_run, tmp_path):
    assert "<netcdf|parquet|csv|json|likelihood-csv|draws-wide>" in help_text("export")
    result = runner.invoke(
        app, ["export", str(pristine_run), "--format", "xlsx", "--out", str(tmp_path / "x")], env=WIDE
    )
    assert result.exit_code == 2 and not (tmp_path / "x").exists()


def test_likelihood_csv_is_the_likelihood_approximation(pristine_run, tmp_path):
    target = tmp_path / "lik.csv"
    result = runner.invoke(app, ["export", str(pristine_run), "--format", "likelihood-csv", "--out", str(target)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(target)
    lik = json.loads((pristine_run / "approximations.json").read_text())["likelihood"]
    assert list(table["name"]) == lik["names"]
    np.testing.assert_allclose(table["yi"], lik["mean_natural"])
    np.testing.assert_allclose(table["sei"], lik["se_natural"])
    np.testing.assert_allclose(table["vi"], np.square(lik["se_natural"]))
    # the V matrix of a multivariate meta-analysis, row by row
    v = table[[f"cov:{n}" for n in lik["names"]]].to_numpy()
    np.testing.assert_allclose(v, lik["covariance_natural"])
    assert set(table["approximates"]) == {"likelihood (prior divided out)"} and set(table["unit"]) == {"points"}


def test_draws_wide_is_one_row_per_draw_with_posterior_package_indices(pristine_run, tmp_path):
    target = tmp_path / "wide.csv"
    result = runner.invoke(app, ["export", str(pristine_run), "--format", "draws-wide", "--out", str(target)])
    assert result.exit_code == 0, result.output
    wide = pd.read_csv(target)
    long = pd.read_parquet(pristine_run / "draws_contrasts.parquet")
    names = json.loads((pristine_run / "approximations.json").read_text())["names"]
    assert list(wide.columns) == [".chain", ".iteration", ".draw", *names]
    assert len(wide) == long[[".chain", ".draw"]].drop_duplicates().shape[0] == wide[".draw"].nunique()
    # the same number as the long table's, draw by draw
    first = long[(long["time"] == 4.0) & (long["outcome"] == "ODI")].set_index(".draw")["delta_natural"]
    np.testing.assert_array_equal(wide.set_index(".draw")["delta[time=4,outcome=ODI]"], first.loc[wide[".draw"]])
