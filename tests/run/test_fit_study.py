"""The in-memory pipeline (``run.fit_study`` -> ``Fit``), writing it (``write_run``), reading it back
(``load_run``), compile reuse across fits, and the top-level API."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import bayes_stenosis as bs
from bayes_stenosis.errors import InputError
from bayes_stenosis.inference import CompileCache, SamplerSettings
from bayes_stenosis.run import DiagnosticsWarning
from bayes_stenosis.testing import write_study

SETTINGS = {"chains": 2, "draws": 400, "tune": 400}


def _contrast_study(tmp_path):
    """One outcome, two times, contrasts only: the posterior of delta is close to the normal likelihood."""
    row = {"outcome": "ODI", "measure": "change", "direction": "new_minus_reference"}
    return write_study(
        tmp_path / "study",
        follow_up=(4.0, 8.0),
        rows={
            "contrasts.csv": [
                row | {"time": 4, "estimate": -2, "se": 3},
                row | {"time": 8, "estimate": 1, "se": 2.5},
            ]
        },
    )


def test_top_level_api_is_lazy():
    """``import bayes_stenosis`` stays light (no PyMC) until an API name is used."""
    code = (
        "import sys, bayes_stenosis as bs; assert 'pymc' not in sys.modules; "
        "f = bs.fit_study; assert 'pymc' in sys.modules; print(f.__module__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "bayes_stenosis.run.fit"
    with pytest.raises(AttributeError):
        bs.no_such_name  # noqa: B018


@pytest.mark.slow
def test_fit_in_memory_writes_and_reads_back_the_same_numbers(tmp_path):
    study = _contrast_study(tmp_path)
    fit = bs.fit_study(study, prior_set="vague", seed=4, **SETTINGS)
    assert isinstance(fit, bs.Fit)
    folder = bs.write_run(fit, tmp_path / "out")
    run = bs.load_run(folder)
    numbers = fit.decisions.select_dtypes("number").columns
    pd.testing.assert_frame_equal(run.decisions[numbers], fit.decisions[numbers].reset_index(drop=True))
    # the "any cell beyond its margin" row has no decision: None in memory, an empty cell in the CSV
    assert run.decisions["decision"].fillna("").tolist() == fit.decisions["decision"].fillna("").tolist()
    np.testing.assert_array_equal(run.idata.posterior["delta"].values, fit.idata.posterior["delta"].values)
    assert run.verdict == fit.verdict.status
    assert run.manifest["sampler"]["seed"] == 4 and run.manifest["prior_set"] == "vague"
    with pytest.raises(InputError, match="already exists"):
        bs.write_run(fit, tmp_path / "out")


@pytest.mark.slow
def test_reused_compile_gives_the_same_draws_as_a_fresh_one(tmp_path):
    """A cache compiled for one prior set (normal family) and refitted with another set's
    hyperparameters swapped in as data gives bit-identical draws to a fresh compile of that set."""
    study = bs.load_study(_contrast_study(tmp_path))
    spec, _ = bs.load_spec("default")
    cache = CompileCache(SamplerSettings.from_spec(spec.sampler, **SETTINGS))
    first = bs.fit_study(study, prior_set="vague", seed=2, compiled=cache, **SETTINGS)
    reused = bs.fit_study(study, prior_set="small_difference", seed=3, compiled=cache, **SETTINGS)
    assert len(cache.models) == 1 and cache.hits == 1
    fresh_cache = CompileCache(SamplerSettings.from_spec(spec.sampler, **SETTINGS))  # empty: a fresh compile
    fresh = bs.fit_study(study, prior_set="small_difference", seed=3, compiled=fresh_cache, **SETTINGS)
    assert fresh_cache.hits == 0 and len(fresh_cache.models) == 1
    np.testing.assert_array_equal(reused.idata.posterior["delta"].values, fresh.idata.posterior["delta"].values)
    # and the swap took effect: the small-difference prior pulls delta toward 0 more than the vague one
    assert float(abs(reused.idata.posterior["delta"]).mean()) < float(abs(first.idata.posterior["delta"]).mean())


def test_in_memory_spec_is_recorded(tmp_path):
    from bayes_stenosis.run import load_model_spec

    spec, path, sha = load_model_spec("default")
    assert path.name == "default.toml" and len(sha) == 64
    same, none_path, sha_mem = load_model_spec(spec)
    assert same is spec and none_path is None and len(sha_mem) == 64


def test_a_failed_verdict_warns(tmp_path):
    """A notebook user learns that the diagnostics failed without asking: 10 draws cannot reach an ESS of 400."""
    study = bs.load_study(_contrast_study(tmp_path))
    with pytest.warns(DiagnosticsWarning, match="the diagnostics failed"):
        fit = bs.fit_study(study, seed=1, chains=2, draws=10, tune=10, posterior_predictive=False)
    assert fit.verdict.status == "fail"


def test_a_fit_without_full_results_has_the_same_decisions(tmp_path):
    """A sweep's fits (``full_results=False``) keep only the decision table: the same table, diagnostics and
    verdict as the full fit with the same seed, and no contrasts to write."""
    study = bs.load_study(_contrast_study(tmp_path))
    kwargs = {"prior_set": "vague", "seed": 5, "chains": 2, "draws": 200, "tune": 200, "posterior_predictive": False}
    full = bs.fit_study(study, **kwargs)
    lean = bs.fit_study(study, full_results=False, **kwargs)
    assert lean.results is None and full.results is not None
    pd.testing.assert_frame_equal(lean.decisions, full.decisions)
    pd.testing.assert_frame_equal(lean.decision_diagnostics, full.decision_diagnostics)
    assert lean.verdict == full.verdict
    with pytest.raises(ValueError, match="full_results"):
        lean.contrasts  # noqa: B018
    with pytest.raises(ValueError, match="full_results"):
        bs.write_run(lean, tmp_path / "out")
