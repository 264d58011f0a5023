"""IPD scaling benchmark: the package's IPD model vs a plain PyMC script, at 400 / 2,000 / 10,000 patients.

Each (runner, size) is a fresh process run under ``/usr/bin/time -v`` (whole-process wall time and peak
RSS); the worker reports its own phase timings. Both runners fit the same simulated trial (4 outcomes,
baseline + 2 follow-ups, equal arms, SIMULATED data, seed 2026) and write the posterior to NetCDF.

* ``package``: ``simulate -> write ipd.csv -> load_study -> prepare_inputs -> build_model`` (unstructured
  covariance over visit x outcome; since issue 22's sufficient statistics the sampled density is one term per
  missingness pattern and arm whose cost does not grow with the patients), nutpie compile once (or load it from
  the disk cache of compiled models: ``compile_s`` is then the load), ``nutpie.sample``
  with the spec's sampler settings (4 chains x (1000 tune + 1500 draws), target acceptance 0.98), posterior
  to NetCDF; worst R-hat and least bulk / tail ESS over every sampled quantity. (``bayes-stenosis fit`` adds
  prior/posterior predictive and pointwise log-likelihood, whose size grows with patients x draws; not timed
  here.)
* ``fit``: the whole ``bayes-stenosis fit STUDY --no-progress`` command on the same simulated study (written
  beforehand, untimed): spec defaults (nutpie, 4 chains x 1000 + 1000), prior and posterior predictive,
  pointwise log-likelihood (per patient), diagnostics, NetCDF, plots and report; its phase timings are
  read from the run's manifest.
* ``package-pe``: ``package`` with ``covariance = "patient_effects"`` (the default before issue 22).
* ``plain``: a plain PyMC script of the ANCOVA random-effects model with N x 4 latent patient effects,
  ``pm.sample()`` defaults (PyMC NUTS, C backend; chains = max(2, cores)), ``idata.to_netcdf``.

Usage::

    python benchmarks/bench_ipd.py --sizes 400,2000,10000 --runners package,plain [--timeout 1500]

prints a markdown table (and writes it with the raw JSON to ``--out``). The machine may be shared:
``uptime`` is recorded before and after every run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SEED = 2026
HERE = Path(__file__).resolve()


def _truth(n_total: int):
    import dataclasses

    from bayes_stenosis import simulation as sim

    base = sim.default_truth(n_per_arm=(n_total // 2, n_total - n_total // 2), delta=0.0)
    wide = tuple(dataclasses.replace(o, scale_min=-1000.0, scale_max=1000.0) for o in base.outcomes)
    return dataclasses.replace(base, outcomes=wide)


def _ess(idata, names):
    import arviz as az

    ess = az.ess(idata, var_names=names)
    return float(min(float(ess[v].min()) for v in ess.data_vars))


def _convergence(idata) -> dict:
    """Worst R-hat and least bulk / tail ESS over every sampled quantity, and which one."""
    import arviz as az

    post = idata.posterior
    rhat, bulk, tail = az.rhat(post), az.ess(post, method="bulk"), az.ess(post, method="tail")
    names = [v for v in post.data_vars if post[v].size]
    worst = max(names, key=lambda v: float(rhat[v].max()))
    least = min(names, key=lambda v: float(bulk[v].min()))
    return {
        "max_rhat": float(rhat[worst].max()),
        "max_rhat_of": worst,
        "min_ess_bulk": float(bulk[least].min()),
        "min_ess_bulk_of": least,
        "min_ess_tail": min(float(tail[v].min()) for v in names),
    }


def worker_package(n_total: int, folder: Path, patient_effects: bool) -> dict:
    t0 = time.perf_counter()
    from bayes_stenosis.inference import compile_nutpie, nutpie_sample
    from bayes_stenosis.model import build_model, prepare_inputs, resolve_prior
    from bayes_stenosis.spec import load_spec
    from bayes_stenosis.study import load_study

    out = {"import_s": time.perf_counter() - t0}
    t = time.perf_counter()
    study_folder = _write_study(n_total, folder / "study")
    out["simulate_write_s"] = time.perf_counter() - t
    t = time.perf_counter()
    spec, _ = load_spec()
    if patient_effects:
        spec = spec.model_copy(update={"ipd": spec.ipd.model_copy(update={"covariance": "patient_effects"})})
    inputs = prepare_inputs(load_study(study_folder), spec)
    out["load_prepare_s"] = time.perf_counter() - t
    t = time.perf_counter()
    model = build_model(inputs, spec, resolve_prior(spec, "weakly_informative", inputs))
    out["build_s"] = time.perf_counter() - t
    t = time.perf_counter()
    compiled = compile_nutpie(model).compiled
    out["compile_s"] = time.perf_counter() - t
    t = time.perf_counter()
    s = spec.sampler  # the spec's default settings (chains, draws, tuning, target acceptance)
    idata = nutpie_sample(
        compiled, chains=s.chains, draws=s.draws, tune=s.tune, seed=SEED, target_accept=s.target_accept
    )
    out["sampling_s"] = time.perf_counter() - t
    t = time.perf_counter()
    idata.to_netcdf(str(folder / "posterior.nc"))
    out["netcdf_s"] = time.perf_counter() - t
    out["netcdf_mb"] = (folder / "posterior.nc").stat().st_size / 1e6
    out["min_ess_bulk_delta"] = _ess(idata, ["delta"])
    out["divergences"] = int(idata.sample_stats["diverging"].sum())
    out.update(_convergence(idata))
    out["free_parameters"] = int(sum(v.size for v in model.initial_point().values()))
    return out


def worker_plain(n_total: int, folder: Path) -> dict:
    """The plain-PyMC comparison: a textbook ANCOVA random-effects model, latent patient effects."""
    t0 = time.perf_counter()
    import pymc as pm

    from bayes_stenosis import simulation as sim

    out = {"import_s": time.perf_counter() - t0}
    t = time.perf_counter()
    truth = _truth(n_total)
    patients = sim.simulate_patients(truth, seed=SEED)
    wide = patients.pivot_table(index=["arm", "patient"], columns=["time", "outcome"], values="value")
    names = truth.outcome_names
    values = wide.reindex(columns=[(t, o) for t in truth.times for o in names]).to_numpy()
    n, n_o, n_t = len(values), len(names), len(truth.follow_up)
    values = values.reshape(n, n_t + 1, n_o)
    arm = (wide.index.get_level_values("arm") == sim.NEW_ARM).astype(int)
    sd = values[:, 0].std(axis=0, ddof=1)
    centre = values[:, 0].mean(axis=0)
    x = (values - centre) / sd
    out["simulate_write_s"] = time.perf_counter() - t
    t = time.perf_counter()
    with pm.Model() as model:
        mu_b = pm.Normal("mu_b", 0, 1, shape=n_o)
        chol_b, _, _ = pm.LKJCholeskyCov("chol_b", eta=2, n=n_o, sd_dist=pm.HalfNormal.dist(1, shape=n_o))
        pm.MvNormal("baseline", mu_b, chol=chol_b, observed=x[:, 0])
        alpha = pm.Normal("alpha", 0, 2, shape=(2, n_t, n_o))
        beta = pm.Normal("beta", 0.5, 0.5, shape=(n_t, n_o))
        chol_u, _, _ = pm.LKJCholeskyCov("chol_u", eta=2, n=n_o, sd_dist=pm.HalfNormal.dist(1, shape=n_o))
        z = pm.Normal("z", 0, 1, shape=(n, n_o))
        u = z @ chol_u.T
        sigma = pm.HalfNormal("sigma", 1, shape=n_o)
        mean = mu_b + alpha[arm] + beta * (x[:, :1] - mu_b) + u[:, None, :]
        pm.Normal("follow_up", mean, sigma, observed=x[:, 1:])
        pm.Deterministic("delta", alpha[1] - alpha[0])
    out["build_s"] = time.perf_counter() - t
    t = time.perf_counter()
    with model:
        idata = pm.sample(random_seed=SEED, progressbar=False, compute_convergence_checks=False)
    out["pm_sample_call_s"] = time.perf_counter() - t
    out["sampling_s"] = float(idata.sample_stats.attrs.get("sampling_time", float("nan")))
    t = time.perf_counter()
    idata.to_netcdf(str(folder / "posterior.nc"))
    out["netcdf_s"] = time.perf_counter() - t
    out["netcdf_mb"] = (folder / "posterior.nc").stat().st_size / 1e6
    out["min_ess_bulk_delta"] = _ess(idata, ["delta"])
    out["divergences"] = int(idata.sample_stats["diverging"].sum())
    out["chains"] = int(idata.posterior.sizes["chain"])
    return out


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def _write_study(n_total: int, folder: Path) -> Path:
    from bayes_stenosis import simulation as sim

    truth = _truth(n_total)
    patients = sim.simulate_patients(truth, seed=SEED)
    return sim.write_study(folder, truth, patients, levels=["ipd"], seed=SEED)


def _fit_result(out: Path) -> dict:
    """Phase timings, size and diagnostics of the run folder ``out/<study>/<run>/`` that ``fit`` wrote."""
    import pandas as pd

    manifests = list(out.glob("*/*/manifest.json"))
    if not manifests:
        return {}
    manifest = json.loads(manifests[0].read_text())
    run = manifests[0].parent
    timings = manifest.get("timings_seconds", {})
    params = pd.read_csv(run / "diagnostics.csv")
    delta = params[params["quantity"].str.startswith("delta[")]
    return {
        "compile_s": timings.get("compile"),
        "sampling_s": timings.get("sample"),
        "build_s": timings.get("build"),
        "netcdf_s": timings.get("write_netcdf"),
        "posterior_predictive_s": timings.get("posterior_predictive"),
        "prior_predictive_s": timings.get("prior_predictive"),
        "plots_s": timings.get("plots"),
        "netcdf_mb": (run / "posterior.nc").stat().st_size / 1e6,
        "divergences": int(pd.read_csv(run / "diagnostics_sampler.csv")["divergences"].sum()),
        "min_ess_bulk_delta": float(delta["ess_bulk"].min()),
        "verdict": manifest.get("diagnostics_verdict", {}).get("status"),
        "timings": timings,
    }


def run_one(runner: str, n_total: int, timeout: float, blas_threads: int | None = None) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"bench_ipd_{runner}_{n_total}_") as tmp:
        result_file = Path(tmp) / "result.json"
        cmd = ["/usr/bin/time", "-v", sys.executable, str(HERE), "--worker", runner, "--n", str(n_total), "--tmp", tmp]
        if runner == "fit":
            study = _write_study(n_total, Path(tmp) / "study")
            exe = Path(sys.executable).with_name("bayes-stenosis")
            cmd = ["/usr/bin/time", "-v", str(exe), "fit", str(study), "--out", str(Path(tmp) / "out"), "--no-progress"]
        before = _uptime()
        start = time.perf_counter()
        env = dict(os.environ)
        if blas_threads:  # small-matrix LAPACK calls are far slower with threaded OpenBLAS on a busy machine
            env.update(OPENBLAS_NUM_THREADS=str(blas_threads), OMP_NUM_THREADS=str(blas_threads))
        # own session, so a timeout ends the worker too (not only /usr/bin/time)
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
        )
        try:
            _, stderr = proc.communicate(timeout=timeout)
            status = "ok" if proc.returncode == 0 else f"exit {proc.returncode}"
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 15)
            _, stderr = proc.communicate()
            status = f"timeout after {timeout:g} s"
        wall = time.perf_counter() - start
        rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr)
        row = {
            "runner": runner,
            "patients": n_total,
            "status": status,
            "whole_process_s": wall,
            "peak_rss_mb": int(rss.group(1)) / 1024 if rss else None,
            "uptime_before": before,
            "uptime_after": _uptime(),
        }
        if runner == "fit":
            row.update(_fit_result(Path(tmp) / "out"))
        if result_file.exists():
            row.update(json.loads(result_file.read_text()))
        elif status != "ok" or "Traceback" in stderr:
            row["error_tail"] = stderr[-800:]
        return row


def table(rows: list[dict]) -> str:
    head = (
        "| runner | patients | status | whole process s | sampling s | compile s | build s | NetCDF s | "
        "peak RSS MB | min bulk ESS (delta) | divergences | max R-hat (of) | min bulk / tail ESS | "
        "load (1-min, before/after) |"
    )
    lines = [head, "|" + "---|" * 14]

    def f(v, fmt="{:.1f}"):
        return "-" if v is None or v != v else fmt.format(v)

    for r in rows:
        load = "/".join(re.findall(r"load average: ([\d.]+)", r["uptime_before"] + " " + r["uptime_after"]))
        lines.append(
            f"| {r['runner']} | {r['patients']:,} | {r['status']} | {f(r['whole_process_s'])} | "
            f"{f(r.get('sampling_s'))} | {f(r.get('compile_s'))} | {f(r.get('build_s'), '{:.2f}')} | "
            f"{f(r.get('netcdf_s'), '{:.2f}')} | {f(r.get('peak_rss_mb'), '{:.0f}')} | "
            f"{f(r.get('min_ess_bulk_delta'), '{:.0f}')} | {r.get('divergences', '-')} | "
            f"{f(r.get('max_rhat'), '{:.3f}')} ({r.get('max_rhat_of', '-')}) | "
            f"{f(r.get('min_ess_bulk'), '{:.0f}')} / {f(r.get('min_ess_tail'), '{:.0f}')} | {load} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="400,2000,10000")
    parser.add_argument("--runners", default="package,plain")
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--out", default="benchmarks/results/ipd")
    parser.add_argument("--blas-threads", type=int, default=None, help="OPENBLAS/OMP threads for the workers")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--tmp", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        folder = Path(args.tmp)
        if args.worker == "plain":
            result = worker_plain(args.n, folder)
        else:
            result = worker_package(args.n, folder, patient_effects=args.worker == "package-pe")
        (folder / "result.json").write_text(json.dumps(result))
        return
    rows = []
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    timed_out: dict[str, int] = {}  # a runner that timed out at a size would only time out at a larger one
    for n_total in [int(s) for s in args.sizes.split(",")]:
        for runner in args.runners.split(","):
            if runner in timed_out:
                rows.append(
                    {
                        "runner": runner,
                        "patients": n_total,
                        "status": f"not run (timed out at {timed_out[runner]:,})",
                        "whole_process_s": None,
                        "uptime_before": "",
                        "uptime_after": "",
                    }
                )
                continue
            rows.append(run_one(runner, n_total, args.timeout, args.blas_threads))
            if rows[-1]["status"].startswith("timeout"):
                timed_out[runner] = n_total
            print(json.dumps(rows[-1]), flush=True)
            (out / "bench_ipd.json").write_text(json.dumps(rows, indent=2))
    text = table(rows)
    (out / "bench_ipd.md").write_text(
        f"Command: python benchmarks/bench_ipd.py --sizes {args.sizes} --runners {args.runners} "
        f"--timeout {args.timeout:g}\n"
        f"Worker BLAS threads: {args.blas_threads or 'default'}\n\n{text}\n"
    )
    print(text)


if __name__ == "__main__":
    main()
