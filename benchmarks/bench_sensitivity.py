"""Sensitivity sweep vs separate fits: one ``bayes-stenosis sensitivity`` process against N separate
``bayes-stenosis fit`` processes over the same grid (whole-process wall clock each).

The grid is 4 prior sets x 3 correlation assumptions (uncertain, fixed 0.25, fixed 0.75) = 12 fits,
written as a copy of ``models/default.toml`` with that ``[sensitivity]`` grid; each separate fit gets
the same prior set and correlation (``--prior`` and a spec copy with ``fixed_baseline_followup``),
the same chains/draws/tune, no plots and no report. The sweep compiles once per model structure
(prior family x correlation mode: 4 compiles) and swaps hyperparameters as data; a separate fit
pays import + build + compile + prior/posterior predictive + writing every time. The separate fits
also do work the sweep does not (posterior predictive, log-likelihood, NetCDF, reproduce.csv):
that is what running ``fit`` 12 times costs, which is the comparison asked for.

Usage::

    python benchmarks/bench_sensitivity.py                      # flagship, 250 draws + 250 tune per chain
    python benchmarks/bench_sensitivity.py --draws 1000 --tune 1000   # the spec's defaults (slow: ~30+ min)
    python benchmarks/bench_sensitivity.py --separate 4         # time 4 separate fits, extrapolate to 12
    python benchmarks/bench_sensitivity.py --plain 3            # also 3 plain-PyMC fits of grid points, x 12 / 3

``--plain K`` runs ``benchmarks/plain_pymc_baseline.py`` (the same model, ``pm.sample()`` defaults, NetCDF)
on the first K grid points: the loop a user would write instead of ``sensitivity``. Its draws are PyMC's
defaults (1000 + 1000, 2 chains), whatever ``--draws`` says. The last line printed is a JSON summary.

Prints the machine load (1/5/15-min load averages) before and after: on a shared 2-core machine
both timings scale with the load, so compare them only within one run.
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

ROOT = Path(__file__).resolve().parents[1]
PRIORS = ["weakly_informative", "small_difference", "enthusiastic", "vague"]
CORRELATIONS = ["uncertain", 0.25, 0.75]


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


#: The grid pinned: every other axis of the default spec's [sensitivity] table (which has grown to 53 fits)
#: set to the spec's own value, so the sweep is the 12 fits the separate runs repeat.
PINNED = {
    "prior_sets": PRIORS,
    "correlations": CORRELATIONS,
    "outcome_pooling": ["spec"],
    "between_tests": ["spec"],
    "followup_sd_ratios": ["spec"],
    "analysed_fractions": ["spec"],
}


def spec_copy(folder: Path, name: str, fixed: float | None) -> Path:
    text = (ROOT / "models" / "default.toml").read_text()
    for key, values in PINNED.items():
        text, count = re.subn(rf"(?m)^{key} = \[.*\]$", f"{key} = {json.dumps(values)}", text)
        if count != 1:
            raise SystemExit(f"models/default.toml: expected one '{key} = [...]' line, found {count}")
    if fixed is not None:
        text = text.replace("[correlation]\n", f"[correlation]\nfixed_baseline_followup = {fixed}\n", 1)
    path = folder / f"{name}.toml"
    path.write_text(text)
    return path


def cli() -> list[str]:
    return [sys.executable, "-m", "bayes_stenosis"]


def timed(cmd: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    return time.perf_counter() - start, proc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--study", default="farpour2022")
    parser.add_argument("--draws", type=int, default=250)
    parser.add_argument("--tune", type=int, default=250)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--separate", type=int, default=12, help="how many of the 12 separate fits to time")
    parser.add_argument("--keep", type=Path, default=None, help="write the sweep's folder under this root and keep it")
    parser.add_argument("--plain", type=int, default=0, help="how many plain-PyMC fits of grid points to time")
    args = parser.parse_args()
    sampler = ["--draws", str(args.draws), "--tune", str(args.tune), "--chains", str(args.chains)]
    print(
        f"study {args.study}; grid {len(PRIORS)} priors x {len(CORRELATIONS)} correlations = 12 fits; "
        f"{args.chains} chains x ({args.tune} tune + {args.draws} draws)"
    )
    print(f"load before: {load()}")
    with tempfile.TemporaryDirectory(prefix="bench_sens_") as tmp:
        work = Path(tmp)
        grid_spec = spec_copy(work, "grid", None)
        sweep_root = args.keep or work / "sweep"
        wall, proc = timed(
            [
                *cli(),
                "sensitivity",
                args.study,
                "--model",
                str(grid_spec),
                "--out",
                str(sweep_root),
                "--overwrite",
                *sampler,
            ]
        )
        if proc.returncode != 0:
            print(proc.stdout[-3000:], proc.stderr[-3000:])
            raise SystemExit(f"sensitivity failed (exit {proc.returncode})")
        manifest = json.loads((sweep_root / args.study.split("/")[-1] / "sensitivity" / "manifest.json").read_text())
        t = manifest["timings_seconds"]
        structures = manifest["structures_compiled"]  # a count (a list of keys in older manifests)
        n_structures = structures if isinstance(structures, int) else len(structures)
        n_fits = int(manifest["n_fits"])
        if n_fits != len(PRIORS) * len(CORRELATIONS):
            raise SystemExit(f"the sweep ran {n_fits} fits, not the pinned grid's {len(PRIORS) * len(CORRELATIONS)}")
        floor = t["compile"] + t["sampling"]
        print(
            f"sweep: whole process {wall:.1f} s (in-process {t['total']:.1f} s: compile {t['compile']:.1f} s for "
            f"{n_structures} structures, sampling {t['sampling']:.1f} s); load now {load()}"
        )
        print(
            f"sweep / (compile + sampling) = {wall / floor:.2f} (issue 21's target: <= 1.10; "
            f"{(wall - floor) / n_fits:.2f} s per fit outside compile and sampling, imports included)"
        )
        grid = [(p, c) for p in PRIORS for c in CORRELATIONS]

        def spec_for(k: int, corr) -> Path:  # the grid point's spec: the sweep's own, or a fixed-rho copy
            return grid_spec if corr == "uncertain" else spec_copy(work, f"fixed{k}", corr)

        per_fit = []
        configs = grid[: args.separate]
        for k, (prior, corr) in enumerate(configs):
            spec = spec_for(k, corr)
            w, proc = timed(
                [
                    *cli(),
                    "fit",
                    args.study,
                    "--model",
                    str(spec),
                    "--prior",
                    prior,
                    "--out",
                    str(work / "separate"),
                    "--name",
                    f"fit{k}",
                    "--no-plots",
                    "--no-progress",
                    "--no-report",
                    *sampler,
                ]
            )
            if proc.returncode != 0:
                print(proc.stdout[-2000:], proc.stderr[-2000:])
                raise SystemExit(f"fit {prior} / {corr} failed (exit {proc.returncode})")
            per_fit.append(w)
            print(f"  separate fit {k + 1}/{len(configs)} ({prior}, rho {corr}): {w:.1f} s; load {load()}")
        scaled = None
        if per_fit:  # --separate 0: the sweep alone
            scaled = sum(per_fit) * 12 / len(per_fit)
            label = "measured" if len(per_fit) == 12 else f"extrapolated from {len(per_fit)} fits"
            median = sorted(per_fit)[len(per_fit) // 2]
            print(f"12 separate fits: {scaled:.1f} s ({label}; median per fit {median:.1f} s)")
            print(f"sweep / separate = {wall / scaled:.2f}  (speed-up x{scaled / wall:.1f})")
        per_plain = []
        baseline = ROOT / "benchmarks" / "plain_pymc_baseline.py"
        for k, (prior, corr) in enumerate(grid[: args.plain]):
            w, proc = timed(
                [sys.executable, str(baseline), args.study, str(work / f"plain{k}.nc")]
                + ["--model", str(spec_for(k, corr)), "--prior", prior]
            )
            if proc.returncode != 0:
                print(proc.stdout[-2000:], proc.stderr[-2000:])
                raise SystemExit(f"plain PyMC {prior} / {corr} failed (exit {proc.returncode})")
            info = json.loads([ln for ln in proc.stdout.splitlines() if ln.startswith("{")][-1])
            per_plain.append(w)
            print(
                f"  plain PyMC fit {k + 1}/{args.plain} ({prior}, rho {corr}): {w:.1f} s, sampling "
                f"{info['sampling_only']:.1f} s, {info['divergences']} divergences; load {load()}"
            )
        plain12 = sum(per_plain) * 12 / len(per_plain) if per_plain else None
        if plain12:
            print(f"12 plain PyMC fits: {plain12:.1f} s (extrapolated from {len(per_plain)} fits)")
            print(f"sweep / plain PyMC = {wall / plain12:.2f}")
        print(f"load after: {load()}")
        summary = {
            "sweep_s": wall,
            "sweep_compile_s": t["compile"],
            "sweep_sampling_s": t["sampling"],
            "structures_compiled": n_structures,
            "n_fits": n_fits,
            "sweep_over_compile_and_sampling": wall / floor,
            "separate_fit_s": per_fit,
            "separate_12_s": scaled,
            "plain_fit_s": per_plain,
            "plain_12_s": plain12,
            "draws": args.draws,
            "tune": args.tune,
            "chains": args.chains,
        }
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
