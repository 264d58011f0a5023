"""Benchmark harness: whole-process time, sampling-only time and peak memory, side by side with plain PyMC.

Each measurement is a fresh process under ``/usr/bin/time -v`` (wall clock and peak RSS of the
largest single process). **cold** = empty compile caches for that process: a new
``PYTENSOR_FLAGS=base_compiledir=<dir>`` (covers PyTensor's C cache and its numba cache) and a new
``NUMBA_CACHE_DIR=<dir>`` and ``BAYES_STENOSIS_COMPILE_CACHE=<dir>``; **warm** = the same command again
right after, with the caches the cold run filled (method in BENCHMARKS.md). The OS page cache is not dropped.

Workloads

* ``bayes-stenosis fit`` on the flagship (``farpour2022``: threshold statements only), on the bundled
  ``podichetty2004`` (``--workloads podichetty2004``: one published contrast, contrast-only evidence) and on a
  simulated arm-summary study (flagship shape: 4 outcomes x 2 follow-ups, 20 per arm, score-form
  arm summaries, seed 2024, labelled simulated), with its defaults (nutpie, 4 chains x 1000 + 1000
  tune, target_accept 0.95, prior and posterior predictive, diagnostics, decisions, plots).
  Sampling-only = the ``nutpie.sample`` call (``manifest.json`` timings).
* ``benchmarks/plain_pymc_baseline.py`` on the same study: the same model (``build_model``),
  ``pm.sample()`` defaults (PyMC NUTS, 2 chains on this 2-core machine, target_accept 0.8) and a
  NetCDF write. Sampling-only = PyMC's ``sampling_time``.
* ``benchmarks/bench_sensitivity.py``: the 12-fit sensitivity sweep (one ``bayes-stenosis sensitivity``
  process) against separate ``bayes-stenosis fit`` processes and plain-PyMC scripts of the same grid
  points (``--sensitivity-fits`` of each timed, scaled to 12).
* ``benchmarks/bench_ipd.py``: ``bayes-stenosis fit`` on simulated patient-level trials of 400 / 2,000 /
  10,000 patients against a plain PyMC script of the same ANCOVA model with latent patient effects
  (``--ipd-timeout`` seconds per process; a runner that times out is not run at larger sizes).

Usage: ``python benchmarks/run.py [--repeats N] [--skip-extra | --only-extra]``; writes
``benchmarks/results/latest.json`` and the results part of ``BENCHMARKS.md`` (below the ``<!-- results -->``
marker).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKER = "<!-- results -->"


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def timed(cmd: list[str], env: dict, cwd: Path, timeout: float = 3600) -> dict:
    """Run ``cmd`` under /usr/bin/time -v; wall seconds, peak RSS MB, stdout, load before/after."""
    load_before = load_average()
    start = time.perf_counter()
    proc = subprocess.run(
        ["/usr/bin/time", "-v", *cmd], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    wall = time.perf_counter() - start
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    return {
        "cmd": " ".join(cmd),
        "returncode": proc.returncode,
        "wall_s": round(wall, 2),
        "peak_rss_mb": round(int(rss.group(1)) / 1024) if rss else None,
        "stdout": proc.stdout,
        "stderr_tail": proc.stderr[-2000:] if proc.returncode else "",
        "load_before": load_before,
        "load_after": load_average(),
    }


def json_lines(text: str | None) -> list[dict]:
    """The JSON objects a benchmark script printed, one per line, among its other output."""
    return [json.loads(ln) for ln in (text or "").splitlines() if ln.startswith("{")]


def cache_env(cache: Path) -> dict:
    env = dict(os.environ)
    env["PYTENSOR_FLAGS"] = f"base_compiledir={cache / 'pytensor'}"
    env["NUMBA_CACHE_DIR"] = str(cache / "numba")
    env["BAYES_STENOSIS_COMPILE_CACHE"] = str(cache / "bayes-stenosis")  # the package's compiled models
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def simulated_arm_summary_study(folder: Path) -> Path:
    from bayes_stenosis import simulation as sim

    truth = sim.default_truth()  # flagship shape: 4 outcomes, 4 and 8 weeks, 20/20, delta 0
    patients = sim.simulate_patients(truth, seed=2024)
    return sim.write_study(folder, truth, patients, levels=["arm_summary"], seed=2024, study_id="bench_arm_summary")


def package_fit(study: str, work: Path, env: dict, tag: str) -> dict:
    out = work / "runs" / Path(study).name  # one root per workload: the manifest read below is this study's
    exe = shutil.which("bayes-stenosis") or "bayes-stenosis"
    res = timed(
        [exe, "fit", study, "--out", str(out), "--name", tag, "--overwrite", "--no-progress"], env=env, cwd=ROOT
    )
    runs = list(out.glob(f"*/{tag}/manifest.json"))
    if res["returncode"] == 0 and runs:
        import arviz as az

        manifest = json.loads(runs[0].read_text())
        t = manifest.get("timings_seconds", {})
        idata = az.from_netcdf(runs[0].parent / "posterior.nc")
        post = idata.posterior
        res.update(
            sampling_only_s=round(t.get("sample", float("nan")), 2),
            compile_s=round(t.get("compile", float("nan")), 2),
            in_process_total_s=round(t.get("total", float("nan")), 2),
            phases_s={k: round(v, 2) for k, v in t.items()},  # every phase line of the fit, for the reading
            chains=int(post.sizes["chain"]),
            draws=int(post.sizes["draw"]),
            min_ess_bulk_delta=round(float(az.ess(idata, var_names=["delta"], method="bulk")["delta"].values.min())),
            divergences=int(idata.sample_stats["diverging"].sum()),
        )
    res.pop("stdout")
    return res


def baseline_fit(study: str, work: Path, env: dict) -> dict:
    res = timed(
        [sys.executable, str(ROOT / "benchmarks" / "plain_pymc_baseline.py"), study, str(work / "plain.nc")], env, ROOT
    )
    found = json_lines(res.pop("stdout"))
    if res["returncode"] == 0 and found:
        info = found[-1]
        res.update(
            sampling_only_s=round(info["sampling_only"], 2),
            chains=info["chains"],
            draws=info["draws"],
            min_ess_bulk_delta=round(info["min_ess_bulk_delta"]),
            divergences=info["divergences"],
            pm_sample_call_s=round(info["pm_sample_call"], 2),
        )
    return res


def machine() -> dict:
    import importlib.metadata as md

    mem = next(
        (ln.split()[1] for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal")), "0"
    )
    cpu = next(
        (ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines() if "model name" in ln),
        platform.processor(),
    )
    versions = {}
    for pkg in ("bayes-stenosis", "pymc", "pytensor", "nutpie", "numba", "arviz", "numpy"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = "not installed"
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": round(int(mem) / 1024**2, 1),
        "python": platform.python_version(),
        "os": platform.platform(),
        "versions": versions,
        "commit": commit.strip(),
        "started_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS", "(unset)"),
    }


def extra(script: str, args: list[str], work: Path, timeout: float) -> dict | None:
    """Run one of the owned benchmark scripts in a fresh process with its own empty compile caches."""
    path = ROOT / "benchmarks" / script
    if not path.exists():
        return None
    try:
        res = timed([sys.executable, str(path), *args], cache_env(work / f"cache_{path.stem}"), ROOT, timeout=timeout)
    except subprocess.TimeoutExpired:
        la = load_average()
        return {
            "args": args,
            "wall_s": timeout,
            "peak_rss_mb": None,
            "returncode": "timeout",
            "stdout": f"timed out after {timeout:g} s",
            "load_before": la,
            "load_after": la,
        }
    res["args"] = args
    return res


def _sensitivity_lines(ex: dict) -> list[str]:
    """The sweep against separate ``fit`` processes and plain-PyMC fits, from the script's JSON line."""
    found = json_lines(ex.get("stdout"))
    if ex["returncode"] != 0 or not found:
        return ["Did not finish:", "", "```", (ex.get("stdout") or ex.get("stderr_tail") or "").strip()[-3000:], "```"]
    s = found[-1]
    k_sep, k_plain = len(s["separate_fit_s"]), len(s["plain_fit_s"])
    sweep = (
        f"compile {s['sweep_compile_s']:.0f} s for {s['structures_compiled']} model structures, "
        f"sampling {s['sweep_sampling_s']:.0f} s"
    )
    lines = [
        f"4 prior sets x 3 baseline-follow-up correlation assumptions = 12 fits, {s['chains']} chains x "
        f"({s['tune']} tune + {s['draws']} draws) for the package; plain PyMC uses `pm.sample()` defaults. "
        f"Command: `python benchmarks/bench_sensitivity.py {' '.join(ex['args'])}`.",
        "",
        "| what | whole-process wall s (12 fits) | how | 1-min load before / after |",
        "|---|---|---|---|",
        f"| one `bayes-stenosis sensitivity` process | {s['sweep_s']:.0f} | {sweep} "
        f"| {ex['load_before'].split()[0]} / {ex['load_after'].split()[0]} |",
        f"| 12 separate `bayes-stenosis fit` processes | {s['separate_12_s']:.0f} | extrapolated from {k_sep} "
        f"timed fits ({', '.join(f'{w:.0f}' for w in s['separate_fit_s'])} s) | (same run) |",
    ]
    if s.get("plain_12_s"):
        lines.append(
            f"| 12 plain PyMC scripts | {s['plain_12_s']:.0f} | extrapolated from {k_plain} timed fits "
            f"({', '.join(f'{w:.0f}' for w in s['plain_fit_s'])} s) | (same run) |"
        )
    lines += [
        "",
        f"Sweep / separate fits = {s['sweep_s'] / s['separate_12_s']:.2f}"
        + (f"; sweep / plain PyMC = {s['sweep_s'] / s['plain_12_s']:.2f}." if s.get("plain_12_s") else "."),
    ]
    return lines


def _ipd_lines(ex: dict) -> list[str]:
    table = [ln for ln in (ex.get("stdout") or "").splitlines() if ln.startswith("|")]
    head = [f"Command: `python benchmarks/bench_ipd.py {' '.join(ex['args'])}`.", ""]
    if not table:
        return head + ["Did not finish:", "", "```", (ex.get("stderr_tail") or ex.get("stdout") or "")[-3000:], "```"]
    return head + table


def plain_pairs(results: dict):
    """(workload, caches, repeat, package result, plain-PyMC result) for every row pair that both finished."""
    by = {(r["workload"], r["tool"], r["phase"], r["repeat"]): r["result"] for r in results["rows"]}
    for (w, tool, ph, rep), r in by.items():
        b = by.get((w, "plain PyMC", ph, rep))
        if tool == "bayes-stenosis fit" and b and not r["returncode"] and not b["returncode"]:
            yield w, ph, rep, r, b


def slowest(results: dict) -> list[str]:
    """Package / plain-PyMC whole-process ratios of every comparison in this run, slowest first."""
    ratios = [(r["wall_s"] / b["wall_s"], f"`fit` on the {w}, {ph} caches") for w, ph, _, r, b in plain_pairs(results)]
    found = json_lines((results["extra"].get("sensitivity") or {}).get("stdout"))
    if found and found[-1].get("plain_12_s"):
        ratios.append((found[-1]["sweep_s"] / found[-1]["plain_12_s"], "the 12-fit sensitivity sweep"))
    ipd_rows = json_lines((results["extra"].get("ipd") or {}).get("stdout"))
    for fit in (r for r in ipd_rows if r["runner"] == "fit" and r["status"] == "ok"):
        plain = next((r for r in ipd_rows if r["runner"] == "plain" and r["patients"] == fit["patients"]), None)
        if plain and (plain["status"] == "ok" or plain["status"].startswith("timeout")):
            bound = "" if plain["status"] == "ok" else " (an upper bound: plain PyMC timed out)"
            ratio = fit["whole_process_s"] / plain["whole_process_s"]
            ratios.append((ratio, f"IPD, {fit['patients']:,} patients{bound}"))
    if not ratios:
        return []
    lines = ["", "Package / plain PyMC, whole-process wall time, slowest first (> 1: the package takes longer):", ""]
    lines += [f"* {ratio:.2f} x: {what}" for ratio, what in sorted(ratios, reverse=True)]
    return lines


def render(results: dict) -> str:
    m = results["machine"]
    lines = [
        f"Run {m['started_utc']} UTC at commit `{m['commit']}` - {m['nproc']} cores ({m['cpu']}), "
        f"{m['memory_gb']} GB RAM, Python {m['python']}, {m['os']}.",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()) + ".",
        "",
        f"**Machine load** (1/5/15-min load average) at start: {results['load_start']}, at end: "
        f"{results['load_end']}. Each row gives the 1-min load before and after its process. "
        + (
            "**The machine was shared with other jobs during this run (load above the 2 cores): every wall time "
            "below is taken UNDER LOAD and is slower than on an idle machine; the ratios between columns of one "
            "row are more meaningful than the absolute seconds.**"
            if results["loaded"]
            else "The machine was otherwise idle."
        ),
        "",
        "| workload | tool | caches | whole-process wall s | sampling-only s | compile s | peak RSS MB "
        "| chains x draws | min bulk ESS (delta) | ESS/s (sampling) | divergences | load before / after |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in results["rows"]:
        r = row["result"]
        ess = r.get("min_ess_bulk_delta")
        samp = r.get("sampling_only_s")
        esss = f"{ess / samp:.0f}" if ess and samp and samp == samp and samp > 0 else "-"
        lines.append(
            f"| {row['workload']} | {row['tool']} | {row['phase']} (#{row['repeat']}) | {r['wall_s']:.1f}"
            + ("" if r["returncode"] == 0 else f" (exit {r['returncode']})")
            + f" | {r.get('sampling_only_s', '-')} | {r.get('compile_s', '-')} | {r['peak_rss_mb']} | "
            f"{r.get('chains', '-')} x {r.get('draws', '-')} | {ess if ess is not None else '-'} | {esss} | "
            f"{r.get('divergences', '-')} | {r['load_before'].split()[0]} / {r['load_after'].split()[0]} |"
        )
    lines += ["", "Ratio package / plain PyMC (same workload, caches and repeat):", ""]
    lines += ["| workload | caches | whole-process wall | sampling-only | peak RSS |", "|---|---|---|---|---|"]
    for w, ph, rep, r, b in plain_pairs(results):
        s = (
            f"{r['sampling_only_s'] / b['sampling_only_s']:.2f}"
            if r.get("sampling_only_s") and b.get("sampling_only_s")
            else "-"
        )
        lines.append(
            f"| {w} | {ph} (#{rep}) | {r['wall_s'] / b['wall_s']:.2f} | {s} "
            f"| {r['peak_rss_mb'] / b['peak_rss_mb']:.2f} |"
        )
    lines += slowest(results)
    for key, title in (("sensitivity", "bench_sensitivity.py"), ("ipd", "bench_ipd.py")):
        ex = results["extra"].get(key)
        lines += ["", f"### {title}", ""]
        if key not in results["extra"] and results.get("partial"):
            lines.append("Not measured yet: the run was still going (or stopped) when this was written.")
        elif key not in results["extra"]:
            lines.append(f"Not run by this harness run (`--skip-extra`): see `benchmarks/{title}`.")
        elif ex is None:
            lines.append(f"`benchmarks/{title}` did not exist at this commit: not measured in this run.")
        else:
            lines.append(
                f"Whole script {ex['wall_s']:.1f} s, peak RSS of its largest process {ex['peak_rss_mb']} MB, exit "
                f"{ex['returncode']}, 1-min load {ex['load_before'].split()[0]} / {ex['load_after'].split()[0]}."
            )
            lines.append("")
            lines += _sensitivity_lines(ex) if key == "sensitivity" else _ipd_lines(ex)
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=1, help="cold + warm pairs per workload and tool")
    parser.add_argument("--skip-extra", action="store_true", help="skip bench_sensitivity.py / bench_ipd.py")
    parser.add_argument("--no-markdown", action="store_true", help="do not touch BENCHMARKS.md")
    parser.add_argument(
        "--workloads", default="flagship,simulated", help="comma-separated: flagship, simulated, podichetty2004"
    )
    parser.add_argument("--render-only", action="store_true", help="rewrite BENCHMARKS.md from results/latest.json")
    parser.add_argument("--tools", default="package,plain", help="comma-separated: package, plain")
    parser.add_argument("--results", default="latest", help="results/<NAME>.json")
    parser.add_argument("--merge", default="", help="with --render-only: also add the rows of results/<NAME>.json")
    parser.add_argument("--only-extra", action="store_true", help="run only bench_sensitivity.py / bench_ipd.py")
    parser.add_argument("--sensitivity-fits", type=int, default=3, help="separate and plain fits timed, x 12 / N")
    parser.add_argument("--ipd-sizes", default="400,2000,10000")
    parser.add_argument("--ipd-timeout", type=float, default=1200.0, help="seconds per IPD process")
    args = parser.parse_args()
    if args.render_only:
        saved = json.loads((ROOT / "benchmarks" / "results" / f"{args.results}.json").read_text())
        for name in [m for m in args.merge.split(",") if m]:
            other = json.loads((ROOT / "benchmarks" / "results" / f"{name}.json").read_text())
            saved["rows"] += other["rows"]
            saved["partial"] = saved.get("partial", False) or other.get("partial", False)
            saved["load_end"] = other.get("load_end", saved.get("load_end"))
        saved["rows"].sort(key=lambda r: (r["workload"], r["repeat"], r["tool"], r["phase"]))
        print(write(saved, args.no_markdown, partial=saved.get("partial", False), keep_load=True))
        return
    wanted = set(args.workloads.split(","))
    results = {"machine": machine(), "load_start": load_average(), "rows": [], "extra": {}}
    with tempfile.TemporaryDirectory(prefix="bench_") as tmp:
        work = Path(tmp)
        studies = {
            "flagship farpour2022 (thresholds)": "farpour2022",
            "simulated arm summaries (4 outcomes x 2 times, n=20/arm)": str(
                simulated_arm_summary_study(work / "simulated_arm_summary")
            ),
            # a contrast-only study: the small-study case of issue 21 (warm <= 8 s)
            "podichetty2004 (contrast only: one published contrast)": "podichetty2004",
        }
        studies = {k: v for k, v in studies.items() if k.split()[0] in wanted and not args.only_extra}
        for workload, study in studies.items():
            for rep in range(1, args.repeats + 1):
                tools = {"package": "bayes-stenosis fit", "plain": "plain PyMC"}
                for tool in [tools[t] for t in args.tools.split(",")]:
                    cache = work / f"cache_{abs(hash((workload, tool, rep)))}"
                    for phase in ("cold", "warm"):
                        env = cache_env(cache)
                        print(f"{workload} | {tool} | {phase} #{rep} ...", flush=True)
                        if tool == "plain PyMC":
                            res = baseline_fit(study, work, env)
                        else:
                            res = package_fit(study, work, env, f"bench_{phase}")
                        print(f"   wall {res['wall_s']} s, exit {res['returncode']}", flush=True)
                        results["rows"].append(
                            {"workload": workload, "tool": tool, "phase": phase, "repeat": rep, "result": res}
                        )
                        write(results, args.no_markdown, partial=True, name=args.results)
        if not args.skip_extra:
            k = str(args.sensitivity_fits)
            sizes = args.ipd_sizes.split(",")
            owned = {
                # the spec's own sampler settings (4 x 1000 + 1000), as `fit` and `sensitivity` use them
                "sensitivity": (
                    "bench_sensitivity.py",
                    ["--draws", "1000", "--tune", "1000", "--separate", k, "--plain", k],
                    6 * 3600,
                ),
                "ipd": (
                    "bench_ipd.py",
                    ["--sizes", args.ipd_sizes, "--runners", "fit,plain", "--timeout", f"{args.ipd_timeout:g}"]
                    + ["--out", str(work / "ipd")],
                    2 * len(sizes) * args.ipd_timeout + 60,
                ),
            }
            for key, (script, script_args, timeout) in owned.items():
                print(f"{script} {' '.join(script_args)} ...", flush=True)
                results["extra"][key] = extra(script, script_args, work, timeout)
                write(results, args.no_markdown, partial=True, name=args.results)
    print(write(results, args.no_markdown, partial=False, name=args.results))


def write(results: dict, no_markdown: bool, partial: bool, keep_load: bool = False, name: str = "latest") -> str:
    """Save the results so far (JSON + BENCHMARKS.md); a partial run says so."""
    if not keep_load:
        results["load_end"] = load_average()
    results["loaded"] = any(
        float(r["result"]["load_before"].split()[0]) > (os.cpu_count() or 1) for r in results["rows"]
    )
    results["partial"] = partial
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(results, indent=2))
    text = render(results)
    if partial:
        text = "**PARTIAL RUN (still running or stopped): rows below are the ones finished.**\n\n" + text
    if not no_markdown:
        md = ROOT / "BENCHMARKS.md"
        head = md.read_text().split(MARKER)[0] if md.exists() else "# Benchmarks\n\n"
        md.write_text(head.rstrip() + "\n\n" + MARKER + "\n\n" + text)
    return text


if __name__ == "__main__":
    main()
