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
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_stenosis.calibration.external_ipd import OUTCOMES


def _seeds(text: str) -> list[int]:
    if "-" in text:
        lo, hi = text.split("-")
        return list(range(int(lo), int(hi) + 1))
    return [int(s) for s in text.split(",")]


def _rmse(errors: pd.Series) -> float:
    return float(np.sqrt(np.mean(errors**2)))


#: Bias and RMSE of the package's and OLS's estimates (outcome SDs), the same in every table.
ERRORS = {
    "bias_sd": ("err_sd", "mean"),
    "ols_bias_sd": ("ols_err_sd", "mean"),
    "rmse_sd": ("err_sd", _rmse),
    "ols_rmse_sd": ("ols_err_sd", _rmse),
}


def summary(paths: list[str], by_cell: bool = False) -> str:
    """Agreement (|posterior mean - reference| / posterior SD, SD / SE) and coverage / bias / RMSE tables;
    ``by_cell`` adds them per delta (time x outcome) with the central 95 % binomial range of the count of
    covered trials at 90 % nominal coverage (a cell outside it is flagged)."""
    df = pd.concat([pd.read_csv(p, keep_default_na=False) for p in paths], ignore_index=True)
    df["z_ols"] = (df.post_mean - df.ols) / df.post_sd
    df["z_mmrm"] = (df.post_mean - df.mmrm) / df.post_sd
    df["sd_over_mmrm_se"] = df.post_sd / df.mmrm_se
    df["mcse_over_sd"] = df.mcse / df.post_sd
    df["covered"] = (df.q05 <= df.truth) & (df.truth <= df.q95)
    half = 1.6448536269514722
    df["ols_covered"] = (df.ols - half * df.ols_se <= df.truth) & (df.truth <= df.ols + half * df.ols_se)
    df["err"], df["ols_err"] = df.post_mean - df.truth, df.ols - df.truth
    keys = ["process", "n_per_arm", "spec", "ipd", "prior"]
    agree = df.groupby(keys).agg(
        trials=("seed", "nunique"),
        max_abs_z_ols=("z_ols", lambda z: z.abs().max()),
        max_abs_z_mmrm=("z_mmrm", lambda z: z.abs().max()),
        share_z_mmrm_within_0_1=("z_mmrm", lambda z: float((z.abs() <= 0.1).mean())),
        # Monte Carlo noise of z alone: the posterior mean's MCSE in posterior SDs
        median_mcse_over_sd=("mcse_over_sd", "median"),
        sd_over_mmrm_se_min=("sd_over_mmrm_se", "min"),
        sd_over_mmrm_se_max=("sd_over_mmrm_se", "max"),
        max_rhat=("max_rhat", "max"),
        min_ess_bulk=("min_ess_bulk", "min"),
        min_ess_tail=("min_ess_tail", "min"),
        divergences=("divergences", "sum"),
    )
    per_fit = df.groupby(keys + ["seed"]).max_rhat.first()
    agree.insert(agree.columns.get_loc("max_rhat") + 1, "fits_rhat_over_1_01", (per_fit > 1.01).groupby(keys).sum())
    scale = {o[0]: o[2] for o in OUTCOMES}
    df["err_sd"] = df.err / df.outcome.map(scale)
    df["ols_err_sd"] = df.ols_err / df.outcome.map(scale)
    cover = df.groupby(keys).agg(
        cells=("covered", "size"),
        coverage90=("covered", "mean"),
        ols_coverage90=("ols_covered", "mean"),
        **ERRORS,
    )
    text = f"## agreement\n\n{_markdown(agree)}\n\n## coverage\n\n{_markdown(cover)}"
    if by_cell:
        from scipy import stats

        df["time"] = df.time.map("{:g}".format)
        cells = df.groupby(keys + ["time", "outcome"], sort=False).agg(
            trials=("covered", "size"),
            covered=("covered", "sum"),
            ols_covered=("ols_covered", "sum"),
            **ERRORS,
            max_abs_z_ols=("z_ols", lambda z: z.abs().max()),
        )
        low, high = stats.binom.ppf(0.025, cells.trials, 0.9), stats.binom.ppf(0.975, cells.trials, 0.9)
        cells.insert(2, "band95", [f"{lo:.0f}-{hi:.0f}" for lo, hi in zip(low, high, strict=True)])
        cells.insert(3, "outside", np.where((cells.covered < low) | (cells.covered > high), "yes", ""))
        title = "coverage by cell (covered trials of 'trials'; band95: 95 % of counts at 0.90)"
        text += f"\n\n## {title}\n\n{_markdown(cells)}"
    return text


def _markdown(frame: pd.DataFrame) -> str:
    """A markdown table of a grouped frame (index columns first), numbers to 3 decimals."""
    flat = frame.reset_index()
    cells = [[f"{v:.3f}" if isinstance(v, float) else str(v) for v in row] for row in flat.itertuples(index=False)]
    lines = ["| " + " | ".join(flat.columns) + " |", "|" + "---|" * len(flat.columns)]
    return "\n".join(lines + ["| " + " | ".join(c) + " |" for c in cells])


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
    parser.add_argument("--target-accept", type=float, default=0.8)
    parser.add_argument("--out")
    parser.add_argument("--summary", nargs="*")
    parser.add_argument("--by-cell", action="store_true", help="with --summary: coverage, bias and RMSE per delta")
    args = parser.parse_args()
    if args.summary:
        print(summary(args.summary, by_cell=args.by_cell))
        return
    from bayes_stenosis.calibration.external_ipd_runs import external_fit_rows
    from bayes_stenosis.inference import CompileCache, SamplerSettings
    from bayes_stenosis.spec import load_spec

    spec, _ = load_spec(args.spec)
    if args.ipd:
        spec = spec.model_copy(update={"ipd": spec.ipd.model_copy(update=json.loads(args.ipd))})
    settings = SamplerSettings(
        name="nutpie", chains=args.chains, draws=args.draws, tune=args.tune, target_accept=args.target_accept, seed=0
    )
    cache = CompileCache(settings)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ipd_external_") as tmp:
        # seeds outermost: a run stopped early has the same number of trials of every process and size
        for seed in _seeds(args.seeds):
            for n in (int(s) for s in args.sizes.split(",")):
                for process in args.processes.split(","):
                    rows = external_fit_rows(spec, args.prior, process, n, seed, cache, Path(tmp), args.outcomes)
                    frame = pd.DataFrame(rows).assign(spec=args.spec, ipd=args.ipd or "")
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
