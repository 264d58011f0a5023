"""The patient-level model on trials from the external simulator, against OLS ANCOVA and the unstructured MMRM.

For each process x size x seed (SIMULATED trials of ``bayes_stenosis.calibration.external_ipd``, written
independently of the model's generative form) the script fits the package model (one compile per model
structure, later trials swap their data in) and writes one CSV row per cell: the posterior mean, SD,
Monte Carlo SE and 90 % interval of ``delta_natural``, the per-cell OLS ANCOVA and MMRM (GLS,
unstructured covariance over visit x outcome; per outcome for ``--spec independent``) estimates and
SEs, the truth, and the fit's worst R-hat, least bulk / tail ESS and divergences. ``--summary`` reads
such CSVs and prints the agreement and coverage tables of VALIDATION.md.

Usage::

    python benchmarks/ipd_external.py --processes no_patient_effect --sizes 200 --seeds 1-3 \\
        --spec default --prior vague --out validation/ipd_mmrm/agreement_default.csv
    python benchmarks/ipd_external.py --summary validation/ipd_mmrm/*.csv
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_stenosis.calibration.external_ipd import OUTCOMES, TIMES, simulate_external, true_delta, write_external_study
from bayes_stenosis.stats.repeated_measures import reference_estimates


def _seeds(text: str) -> list[int]:
    if "-" in text:
        lo, hi = text.split("-")
        return list(range(int(lo), int(hi) + 1))
    return [int(s) for s in text.split(",")]


def fit_rows(args, process: str, n: int, seed: int, fitters: dict, tmp: Path) -> list[dict]:
    import arviz as az

    from bayes_stenosis.inference import CompiledModel, SamplerSettings
    from bayes_stenosis.inference.compiled import structure_key
    from bayes_stenosis.model import build_model, prepare_inputs, resolve_prior
    from bayes_stenosis.spec import load_spec
    from bayes_stenosis.study import load_study

    trial = simulate_external(process, n, seed)
    if args.outcomes < len(OUTCOMES):
        trial = dataclasses.replace(
            trial, baseline=trial.baseline[:, : args.outcomes], followup=trial.followup[:, :, : args.outcomes]
        )
    spec, _ = load_spec(args.spec)
    if args.ipd:
        spec = spec.model_copy(update={"ipd": spec.ipd.model_copy(update=json.loads(args.ipd))})
    folder = write_external_study(tmp / f"{process}_{n}_{seed}", trial)
    inputs = prepare_inputs(load_study(folder), spec)
    model = build_model(inputs, spec, resolve_prior(spec, args.prior, inputs))
    settings = SamplerSettings(
        name="nutpie", chains=args.chains, draws=args.draws, tune=args.tune, target_accept=0.8, seed=0
    )
    t0 = time.perf_counter()
    key = structure_key(model)
    if key not in fitters:
        fitters[key] = CompiledModel(model, settings)
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    idata = fitters[key].fit(model, seed=seed)
    sample_s = time.perf_counter() - t0
    draws = idata.posterior["delta_natural"]
    mean = draws.mean(("chain", "draw")).values
    sd = draws.std(("chain", "draw")).values
    q05, q95 = (draws.quantile(q, ("chain", "draw")).values for q in (0.05, 0.95))
    mcse = az.mcse(draws.to_dataset(name="x"), method="mean")["x"].values
    post = idata.posterior[[v for v in idata.posterior.data_vars if not v.startswith(("delta", "change"))]]
    rhat = max(float(az.rhat(post)[v].max()) for v in post.data_vars)
    ess_b = min(float(az.ess(post, method="bulk")[v].min()) for v in post.data_vars)
    ess_t = min(float(az.ess(post, method="tail")[v].min()) for v in post.data_vars)
    ess_delta = float(az.ess(draws.to_dataset(name="x"), method="bulk")["x"].min())
    div = int(idata.sample_stats["diverging"].sum())
    per_outcome = spec.ipd.residual_correlation == "none"
    ols, mmrm = reference_estimates(trial.arm, trial.baseline, trial.followup, per_outcome=per_outcome)
    truth = true_delta(process)[:, : trial.baseline.shape[1]]
    rows = []
    for t in range(len(TIMES)):
        for o in range(trial.baseline.shape[1]):
            rows.append(
                {
                    "process": process, "n_per_arm": n, "seed": seed, "spec": args.spec, "ipd": args.ipd or "",
                    "prior": args.prior, "time": TIMES[t], "outcome": OUTCOMES[o][0], "truth": truth[t, o],
                    "post_mean": mean[t, o], "post_sd": sd[t, o], "mcse": mcse[t, o], "q05": q05[t, o],
                    "q95": q95[t, o], "ols": ols.estimate[t, o], "ols_se": ols.se[t, o],
                    "mmrm": mmrm.estimate[t, o], "mmrm_se": mmrm.se[t, o], "max_rhat": rhat,
                    "min_ess_bulk": ess_b, "min_ess_tail": ess_t, "min_ess_bulk_delta": ess_delta,
                    "divergences": div, "compile_s": compile_s, "sample_s": sample_s,
                }
            )  # fmt: skip
    return rows


def summary(paths: list[str]) -> str:
    """Agreement (|posterior mean - reference| / posterior SD, SD / SE) and coverage / bias / RMSE tables."""
    df = pd.concat([pd.read_csv(p, keep_default_na=False) for p in paths], ignore_index=True)
    df["z_ols"] = (df.post_mean - df.ols) / df.post_sd
    df["z_mmrm"] = (df.post_mean - df.mmrm) / df.post_sd
    df["sd_over_mmrm_se"] = df.post_sd / df.mmrm_se
    df["covered"] = (df.q05 <= df.truth) & (df.truth <= df.q95)
    half = 1.6448536269514722
    df["ols_covered"] = (df.ols - half * df.ols_se <= df.truth) & (df.truth <= df.ols + half * df.ols_se)
    df["err"], df["ols_err"] = df.post_mean - df.truth, df.ols - df.truth
    keys = ["process", "n_per_arm", "spec", "ipd", "prior"]
    agree = df.groupby(keys).agg(
        trials=("seed", "nunique"),
        max_abs_z_ols=("z_ols", lambda z: z.abs().max()),
        max_abs_z_mmrm=("z_mmrm", lambda z: z.abs().max()),
        sd_over_mmrm_se_min=("sd_over_mmrm_se", "min"),
        sd_over_mmrm_se_max=("sd_over_mmrm_se", "max"),
        max_rhat=("max_rhat", "max"),
        min_ess_bulk=("min_ess_bulk", "min"),
        min_ess_tail=("min_ess_tail", "min"),
        divergences=("divergences", "sum"),
    )
    scale = {o[0]: o[2] for o in OUTCOMES}
    df["err_sd"] = df.err / df.outcome.map(scale)
    df["ols_err_sd"] = df.ols_err / df.outcome.map(scale)
    cover = df.groupby(keys).agg(
        cells=("covered", "size"),
        coverage90=("covered", "mean"),
        ols_coverage90=("ols_covered", "mean"),
        bias_sd=("err_sd", "mean"),
        ols_bias_sd=("ols_err_sd", "mean"),
        rmse_sd=("err_sd", lambda e: float(np.sqrt(np.mean(e**2)))),
        ols_rmse_sd=("ols_err_sd", lambda e: float(np.sqrt(np.mean(e**2)))),
    )
    return (
        "## agreement\n\n"
        + agree.to_markdown(floatfmt=".3f")
        + "\n\n## coverage\n\n"
        + cover.to_markdown(floatfmt=".3f")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", default="no_patient_effect")
    parser.add_argument("--sizes", default="200")
    parser.add_argument("--seeds", default="1")
    parser.add_argument("--spec", default="default")
    parser.add_argument("--ipd", default="", help='JSON of [ipd] overrides, e.g. {"covariance": "patient_effects"}')
    parser.add_argument("--prior", default="vague")
    parser.add_argument("--outcomes", type=int, default=len(OUTCOMES))
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--out")
    parser.add_argument("--summary", nargs="*")
    args = parser.parse_args()
    if args.summary:
        print(summary(args.summary))
        return
    fitters: dict = {}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ipd_external_") as tmp:
        # seeds outermost: a run stopped early has the same number of trials of every process and size
        for seed in _seeds(args.seeds):
            for n in (int(s) for s in args.sizes.split(",")):
                for process in args.processes.split(","):
                    rows = fit_rows(args, process, n, seed, fitters, Path(tmp))
                    frame = pd.DataFrame(rows)
                    frame.to_csv(out, mode="a", header=not out.exists(), index=False)
                    z = (frame.post_mean - frame.ols) / frame.post_sd
                    print(
                        f"{process} n={n} seed={seed}: max|z_ols| {z.abs().max():.3f} "
                        f"rhat {frame.max_rhat[0]:.3f} ess {frame.min_ess_bulk[0]:.0f} div {frame.divergences[0]} "
                        f"compile {frame.compile_s[0]:.0f}s sample {frame.sample_s[0]:.0f}s",
                        file=sys.stderr,
                        flush=True,
                    )


if __name__ == "__main__":
    main()
