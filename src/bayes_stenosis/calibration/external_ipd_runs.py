"""Fits of the patient-level model to trials of the external simulator, one row per cell against the truth,
per-cell OLS ANCOVA and the MMRM (``benchmarks/ipd_external.py`` writes them; a quick mode is a slow test).

Every trial of one model structure reuses one compile (:class:`~bayes_stenosis.inference.CompileCache`).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import arviz as az
import numpy as np

from bayes_stenosis.calibration.external_ipd import OUTCOMES, TIMES, simulate_external, true_delta, write_external_study
from bayes_stenosis.inference import CompileCache
from bayes_stenosis.model import build_model, prepare_inputs, resolve_prior
from bayes_stenosis.spec import ModelSpec
from bayes_stenosis.stats.repeated_measures import reference_estimates
from bayes_stenosis.study import load_study

__all__ = ["external_fit_rows"]


def _convergence(idata) -> dict:
    """Worst R-hat and least bulk / tail ESS over the sampled quantities (deterministics of delta and
    change left out: they are functions of the rest), and the divergences."""
    post = idata.posterior[[v for v in idata.posterior.data_vars if not v.startswith(("delta", "change"))]]
    names = [v for v in post.data_vars if post[v].size]
    rhat, bulk, tail = az.rhat(post), az.ess(post, method="bulk"), az.ess(post, method="tail")
    return {
        "max_rhat": max(float(rhat[v].max()) for v in names),
        "min_ess_bulk": min(float(bulk[v].min()) for v in names),
        "min_ess_tail": min(float(tail[v].min()) for v in names),
        "divergences": int(idata.sample_stats["diverging"].sum()),
    }


def external_fit_rows(
    spec: ModelSpec,
    prior_set: str,
    process: str,
    n_per_arm: int,
    seed: int,
    cache: CompileCache,
    folder: Path,
    n_outcomes: int = len(OUTCOMES),
) -> list[dict]:
    """Simulate one trial (``process``, ``n_per_arm``, ``seed``; its first ``n_outcomes`` outcomes), fit it
    with ``spec`` and ``prior_set`` (sampler settings: the cache's), and return one dict per cell: the
    posterior mean, SD, Monte Carlo SE and 90 % interval of ``delta_natural``, the truth, the OLS and
    MMRM estimates and SEs (the MMRM per outcome when ``residual_correlation = "none"``), convergence and
    timings (``compile_s`` 0 when the compile was reused)."""
    trial = simulate_external(process, n_per_arm, seed)
    trial = dataclasses.replace(
        trial, baseline=trial.baseline[:, :n_outcomes], followup=trial.followup[:, :, :n_outcomes]
    )
    study = write_external_study(folder / f"{process}_{n_per_arm}_{seed}", trial)
    inputs = prepare_inputs(load_study(study), spec)
    model = build_model(inputs, spec, resolve_prior(spec, prior_set, inputs))
    before = cache.compile_seconds
    fitter, _ = cache.get(model)
    start = time.perf_counter()
    idata = fitter.fit(model, seed=seed)
    sample_s = time.perf_counter() - start
    draws = idata.posterior["delta_natural"]
    mean, sd = draws.mean(("chain", "draw")).values, draws.std(("chain", "draw")).values
    q05, q95 = (draws.quantile(q, ("chain", "draw")).values for q in (0.05, 0.95))
    mcse = az.mcse(draws.to_dataset(name="x"), method="mean")["x"].values
    per_outcome = spec.ipd.residual_correlation == "none"
    ols, mmrm = reference_estimates(trial.arm, trial.baseline, trial.followup, per_outcome=per_outcome)
    truth = true_delta(process)[:, :n_outcomes]
    common = {"process": process, "n_per_arm": n_per_arm, "seed": seed, "prior": prior_set, **_convergence(idata)}
    common |= {"compile_s": cache.compile_seconds - before, "sample_s": sample_s}
    rows = []
    for t, o in np.ndindex(len(TIMES), n_outcomes):
        cell = {"time": TIMES[t], "outcome": OUTCOMES[o][0], "truth": truth[t, o], "post_mean": mean[t, o]}
        cell |= {"post_sd": sd[t, o], "mcse": mcse[t, o], "q05": q05[t, o], "q95": q95[t, o]}
        cell |= {"ols": ols.estimate[t, o], "ols_se": ols.se[t, o], "mmrm": mmrm.estimate[t, o]}
        rows.append(common | cell | {"mmrm_se": mmrm.se[t, o]})
    return rows
