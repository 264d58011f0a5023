"""Interval coverage of delta over simulated trials whose truths are drawn from the model's prior.

With truths drawn from the prior the posterior intervals are calibrated by construction, so the
90 % equal-tailed interval must cover the truth at the nominal rate. The check is the 99 % binomial
band around 0.9 for the number of (trial x cell) pairs; the observed coverage and its 95 %
Clopper-Pearson interval are printed (pytest -s) and recorded in VALIDATION.md.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bayes_stenosis import simulation as sim
from bayes_stenosis.calibration import (
    SimulatedTrial,
    coverage_study,
    coverage_study_on_engine,
    draw_truths_from_prior,
    expected_coverage_band,
    first_within_scale,
    model_for,
    trial_clustered_interval,
)
from bayes_stenosis.inference import SamplerSettings
from bayes_stenosis.spec import load_spec
from bayes_stenosis.study import load_study
from bayes_stenosis.testing import spec_variant

pytestmark = pytest.mark.slow

OUTCOMES = (
    sim.OutcomeTruth("ODI", "ODI", 0, 100, 45, 16, 0.6, 10),
    sim.OutcomeTruth("RMDQ", "RMDQ", 0, 24, 14, 5, 0.5, 5),
)
SETTINGS = SamplerSettings(name="nutpie", chains=2, draws=500, tune=500, target_accept=0.95, seed=0)
REPLICATES = 100


def plausible_truths(change_natural: np.ndarray, replicates: int, n: int) -> np.ndarray:
    """The first ``replicates`` prior draws whose simulated summaries the loader accepts.

    Room of 4 SE of the arm's mean change is left inside the scale width
    (:func:`~bayes_stenosis.calibration.first_within_scale`). The Normal(0, 1 SMD) prior on the mean
    change puts about 1 % of draws beyond that; the test requires the skipped share to stay below 5 %
    (a guard on the design, not a tolerance) and prints it.
    """
    width = np.array([o.scale_max - o.scale_min for o in OUTCOMES])
    se = np.array([o.sd * np.sqrt(2 * (1 - o.rho)) for o in OUTCOMES]) / np.sqrt(n)
    keep, skipped = first_within_scale(change_natural, width, replicates, slack=4 * se)
    considered = keep[-1] + 1
    print(f"\nprior truths skipped as beyond the scale: {skipped} of {considered}")
    assert skipped <= 0.05 * considered, skipped
    return keep


def coverage_design(tmp_path, level: str, n: int, replicates: int = REPLICATES, seed: int = 2024, spec=None):
    """The simulated trials of the coverage tests: ``(spec, make)`` with ``make(k) -> SimulatedTrial``.

    Truths are the first ``replicates`` prior draws that fit the scales (:func:`plausible_truths`);
    replicate ``k``'s patients use seed ``seed + 1 + k`` and its fit seed ``k``.
    ``benchmarks/diagnose_threshold_divergences.py`` refits the same trials.
    """
    if spec is None:
        spec, _ = load_spec()
    base = sim.default_truth(
        outcomes=OUTCOMES,
        outcome_corr=np.array([[1.0, 0.75], [0.75, 1.0]]),
        follow_up=(8.0,),
        change_reference=np.zeros((1, 2)),
        n_per_arm=(n, n),
    )
    patients = sim.simulate_patients(base, seed=seed)
    template = sim.write_study(tmp_path / "template", base, patients, levels=[level], seed=seed)
    model, _ = model_for(template, spec, "weakly_informative")
    prior = draw_truths_from_prior(model, 2 * replicates, seed=seed)
    keep = plausible_truths(prior["change_natural"], replicates, n)

    def make(k: int):
        j = keep[k]
        truth = dataclasses.replace(
            base, change_reference=prior["change_natural"][j, 0], delta=prior["delta_natural"][j]
        )
        folder = sim.write_study(
            tmp_path / f"rep{k}",
            truth,
            sim.simulate_patients(truth, seed=seed + 1 + k),
            levels=[level],
            seed=seed + 1 + k,
        )
        return SimulatedTrial(folder, np.asarray(truth.delta), k)

    return spec, make


def run_coverage(
    tmp_path, level: str, n: int, replicates: int = REPLICATES, seed: int = 2024, spec=None, cell_summary=None
):
    spec, make = coverage_design(tmp_path, level, n, replicates, seed, spec)
    return coverage_study(
        make, spec, "weakly_informative", range(replicates), SETTINGS, prob=0.9, cell_summary=cell_summary
    )


@pytest.mark.parametrize(
    "level, n, replicates",
    [
        ("contrast", 20, REPLICATES),
        ("contrast", 200, REPLICATES),
        # arm summaries: the outcome deviations are integrated out (change_parameterisation =
        # "marginalised"), which removed the divergences and long trajectories of the non-centred form
        ("arm_summary_change", 20, REPLICATES),
        ("arm_summary_change", 200, REPLICATES),
    ],
)
def test_coverage_with_truths_from_the_prior(tmp_path, level, n, replicates):
    result = run_coverage(tmp_path, level, n, replicates=replicates)
    lo, hi = expected_coverage_band(0.9, result.overall["cells"])
    print(f"\n{level} n={n}/arm: {result.text()}; divergent fits {result.overall['divergent_fits']}")
    assert lo <= result.overall["coverage"] <= hi, result.text()


def _threshold_cells(idata, inputs, folder):
    """Per cell: the reported between-arm statement and the posterior mass of |delta| < c SE (natural
    scale, c the test's critical value, SE from the true SD of change, i.e. the test's own scale)."""
    import json

    truth = json.loads((folder / "truth.json").read_text())["truth"]
    thr = load_study(folder).evidence["threshold"]
    between = thr[thr["comparison"] == "between"]
    n_new, n_ref = truth["n_per_arm"]
    crit = stats.t.ppf(0.975, n_new + n_ref - 2)
    out = {}
    for rec in between.to_dict("records"):
        t, o = float(rec["time"]), rec["outcome"]
        oi = inputs.coords["outcome"].index(o)
        spec_o = truth["outcomes"][oi]
        sd_change = spec_o["sd"] * np.sqrt(2 * (1 - spec_o["rho"]))
        half_width = crit * sd_change * np.sqrt(1 / n_new + 1 / n_ref)
        draws = idata.posterior["delta_natural"].sel(time=t, outcome=o).values.ravel()
        out[(t, o)] = {
            "relation": rec["relation"],
            "direction": rec["direction"] if isinstance(rec["direction"], str) else "",
            "half_width": float(half_width),
            "post_inside": float(np.mean(np.abs(draws) < half_width)),
            "post_favours_new": float(np.mean(draws < 0)),
        }
    return out


def test_threshold_path_coverage_and_concentration(tmp_path, request):
    """Issue 4: statements from real tests on simulated patients (truths from the prior).

    One compiled model serves every replicate because the event kinds are data
    (``thresholds.kinds_as_data``). Calibration gives three checks, each in binomial terms:
    the 90 % intervals cover at the nominal rate; for "P>0.05" cells the posterior mass inside
    |delta| < c SE, averaged over cells, matches how often the truth lies there; for "P<0.05" cells
    the posterior probability of the reported side matches how often the truth lies on it.

    A threshold fit costs ~20 s on 2 busy cores (per-statement quadrature), so CI runs 50 trials
    (100 cells) and ``--release`` the 100 the issue asks for. The two cells of a trial share its
    patients, so the coverage check uses the trial as the unit: the nominal 0.9 must lie in the 99 %
    trial-clustered interval of the observed coverage (the binomial band over cells, which treats them
    as independent, is too narrow: CI once saw 0.81 against a band from 0.82).

    The simulated patients have equal baseline and follow-up SDs, so the model is fitted with that
    assumption too (the default spec's prior on their ratio, centred on 1.3, would be a misspecified
    prior here, not a property of the threshold machinery under test).
    """
    spec = spec_variant(
        thresholds={"kinds_as_data": True}, scale={"followup_sd_ratio_median": 1.0, "followup_sd_ratio_log_sd": 0.0}
    )
    replicates = REPLICATES if request.config.getoption("--release") else REPLICATES // 2
    result = run_coverage(tmp_path, "threshold", 20, replicates=replicates, spec=spec, cell_summary=_threshold_cells)
    reps = result.replicates
    lo, hi = trial_clustered_interval(reps["trial"], reps["covered"], level=0.99)
    print(f"\nthreshold n=20/arm: {result.text()}; divergent fits {result.overall['divergent_fits']}")
    assert lo <= 0.9 <= hi, (result.text(), lo, hi)
    for relation, sub in reps.groupby("relation"):
        if relation == ">":
            # posterior mass inside the non-significance region vs how often the truth is inside
            expected = sub["post_inside"].to_numpy()
            observed = (np.abs(sub["truth"]) < sub["half_width"]).to_numpy()
            what = "P(|delta| < c SE)"
        else:
            new_side = (sub["direction"] == "favours_new").to_numpy()
            expected = np.where(new_side, sub["post_favours_new"], 1 - sub["post_favours_new"])
            observed = np.where(new_side, sub["truth"] < 0, sub["truth"] > 0)
            what = "P(reported side)"
        # calibration: the number of truths in the region is a sum of Bernoulli(p_i), p_i the
        # posterior probabilities (cells of one trial are dependent: the band is 4 SD)
        sd = np.sqrt(np.sum(expected * (1 - expected))) / len(expected)
        print(
            f"  P{relation}0.05 cells: {len(sub)}, mean posterior {what} {expected.mean():.3f}, "
            f"truth there {observed.mean():.3f} (prior-predictive check band +-{4 * sd:.3f})"
        )
        assert abs(expected.mean() - observed.mean()) < 4 * sd + 1 / len(expected), relation


@pytest.mark.slow
def test_coverage_on_the_engine_gives_the_serial_rows(tmp_path):
    """Three trials fitted on an in-process Dask worker equal the serial study's rows (the trials keep their
    seeds), and a rerun into the same store fits nothing."""
    from bayes_stenosis.engine import dask_client

    spec, make = coverage_design(tmp_path / "serial", "contrast", 20, replicates=3)
    serial = coverage_study(make, spec, "weakly_informative", range(3), SETTINGS, prob=0.9)
    _, make_again = coverage_design(tmp_path / "engine", "contrast", 20, replicates=3)
    store = tmp_path / "store"
    with dask_client(workers=1, processes=False) as (client, _):
        kwargs = {"client": client, "store_path": store, "fingerprint": "test", "prob": 0.9}
        engine = coverage_study_on_engine(make_again, spec, "weakly_informative", range(3), SETTINGS, **kwargs)
        again = coverage_study_on_engine(make_again, spec, "weakly_informative", range(3), SETTINGS, **kwargs)
    pd.testing.assert_frame_equal(engine.replicates, serial.replicates, check_dtype=False)
    pd.testing.assert_frame_equal(again.replicates, engine.replicates)
