"""Where the 10,000-patient fit's 'posterior predictive and log-likelihood' phase goes: time the two halves
on 500 parameter draws (2 chains x 250; prior draws of the sampled model's free variables, SIMULATED trial
of benchmarks/bench_ipd.py, seed 2026)."""

# Usage (from the repository root): python benchmarks/results/ipd_suffstats/predictive_split.py
import importlib.util
import json
import tempfile
import time
import warnings
from pathlib import Path

import arviz as az
import numpy as np
import pymc as pm

from bayes_stenosis.inference import chunked_predictive, draws_per_chunk
from bayes_stenosis.model import build_model, predictive_model, prepare_inputs, resolve_prior
from bayes_stenosis.model.terms.ipd import ipd_predictive_summary
from bayes_stenosis.spec import load_spec
from bayes_stenosis.study import load_study

warnings.filterwarnings("ignore")
_spec = importlib.util.spec_from_file_location("bench_ipd", Path(__file__).resolve().parents[2] / "bench_ipd.py")
bench_ipd = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_ipd)
tmp = Path(tempfile.mkdtemp())
folder = bench_ipd._write_study(10000, tmp / "study")
spec, _ = load_spec()
inputs = prepare_inputs(load_study(folder), spec)
prior = resolve_prior(spec, "weakly_informative", inputs)
model = build_model(inputs, spec, prior)
with model:
    pr = pm.sample_prior_predictive(draws=500, random_seed=1, var_names=[v.name for v in model.free_RVs]).prior
post = pr.stack(s=("chain", "draw")).drop_vars(["s", "chain", "draw"]).rename(s="draw").expand_dims(chain=1)
post = post.assign_coords(draw=np.arange(500), chain=[0])
out = {}
t = time.perf_counter()
rep = predictive_model(inputs, spec, prior, model)
out["build_predictive_model_s"] = time.perf_counter() - t
observed = [rv.name for rv in rep.observed_RVs]
with rep:
    t = time.perf_counter()
    chunk = draws_per_chunk(rep, observed, 1, 256.0)
    arms = list(inputs.coords["arm"])
    reduced, _ = chunked_predictive(post, observed, lambda ds: ipd_predictive_summary(ds, inputs.ipd, arms), chunk, 5)
    out["predictive_500_draws_s"] = time.perf_counter() - t
    out["chunk_draws"] = chunk
    idata = az.InferenceData(posterior=post)
    t = time.perf_counter()
    pm.compute_log_likelihood(idata, progressbar=False)
    out["log_likelihood_500_draws_s"] = time.perf_counter() - t
    out["log_likelihood_mb_500_draws"] = sum(v.nbytes for v in idata.log_likelihood.data_vars.values()) / 1e6
print(json.dumps(out))
