"""Scaling of the design engine: trials per second with 1 and 2 local worker processes, same seed.

Usage::

    python benchmarks/bench_design.py RUN_FOLDER [TRIALS] [N_LIST] [--method fast|refit] [--out FILE.json]

Runs ``bayes_stenosis.design_analysis`` (the fast path, or full refits at 2 x 300 draws) on ``RUN_FOLDER``
with a ``LocalCluster`` of 1 and then 2 worker processes (one thread each), the same root seed, nothing
written but the JSON. Trials per second are the engine's (batches submitted to the last batch saved; the
cluster's start-up is timed separately); the workers' CPU seconds over that time say how much of their
cores they got. Checks that both give the same design table. Records the load average before and after
each (the machine may be shared: only ratios within one run are comparable then).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import pandas as pd

from bayes_stenosis.design import RefitSettings, design_analysis
from bayes_stenosis.engine import dask_client
from bayes_stenosis.provenance import git_commit, now_utc


def worker_cpu_seconds() -> float:
    """User + system CPU seconds of the calling worker process so far."""
    t = os.times()
    return t.user + t.system


def one(run: str, trials: int, ns: list[int], workers: int, seed: int, method: str) -> tuple[dict, pd.DataFrame]:
    load_before = os.getloadavg()
    start = time.perf_counter()
    with dask_client(workers=workers) as (client, _):
        started = time.perf_counter() - start
        cpu_before = sum(client.run(worker_cpu_seconds).values())
        refit = RefitSettings(chains=2, draws=300, tune=300)
        result = design_analysis(run, n_per_arm=ns, trials=trials, seed=seed, client=client, method=method, refit=refit)
        cpu = sum(client.run(worker_cpu_seconds).values()) - cpu_before
    engine = result.manifest["engine"]
    record = {
        "workers": workers,
        "cluster_start_seconds": round(started, 2),
        "engine_seconds": engine["seconds"],
        "trials_per_second": engine["trials_per_second"],
        # CPU the workers got: with other jobs on the cores, wall-clock scaling says more about them than us
        "worker_cpu_seconds": round(cpu, 2),
        "trials_per_worker_cpu_second": round(trials / cpu, 2),
        "worker_cpu_share": round(cpu / (workers * engine["seconds"]), 3),
        "wall_seconds": round(time.perf_counter() - start, 2),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
    }
    return record, result.design


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run")
    parser.add_argument("trials", nargs="?", type=int, default=1000)
    parser.add_argument("ns", nargs="?", default="40,80,120,160")
    parser.add_argument("--seed", type=int, default=20261207)
    parser.add_argument("--method", choices=["fast", "refit"], default="fast")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "design_scaling.json")
    args = parser.parse_args()
    ns = [int(n) for n in args.ns.split(",")]
    records, tables = [], []
    for workers in (1, 2):
        record, table = one(args.run, args.trials, ns, workers, args.seed, args.method)
        records.append(record)
        tables.append(table)
        print(json.dumps(record))
    identical = tables[0].equals(tables[1])
    speedup = records[1]["trials_per_second"] / records[0]["trials_per_second"]
    result = {
        "what": f"design, {args.method} path (bayes_stenosis.design_analysis), LocalCluster processes, one thread each",
        "refit_sampler": "2 chains x 300 draws + 300 tuning" if args.method == "refit" else None,
        "run": args.run,
        "trials": args.trials,
        "n_per_arm": ns,
        "seed": args.seed,
        "commit": git_commit(),
        "created_utc": now_utc(),
        "cpus": len(os.sched_getaffinity(0)),
        "records": records,
        "speedup_2_vs_1": round(speedup, 3),
        "identical_design_tables": bool(identical),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"speed-up 2 vs 1 workers: {speedup:.2f}; identical tables: {identical}; wrote {args.out}")


if __name__ == "__main__":
    main()
