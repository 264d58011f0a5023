"""``design_analysis``: simulate confirmatory trials from a run's posterior at each per-arm n, analyse each
with the decision rule, and write the design folder (published once, completely)."""

from __future__ import annotations

import shutil
import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bayes_stenosis import __version__
from bayes_stenosis.design.fast import FastTrial
from bayes_stenosis.design.figure import plot_assurance
from bayes_stenosis.design.inputs import DesignInputs, design_inputs_from_run
from bayes_stenosis.design.refit import RefitSettings, refit_trial_from_run
from bayes_stenosis.design.summary import INTERVAL_PROB, design_table, target_table
from bayes_stenosis.engine import dask_client, map_trials
from bayes_stenosis.provenance import provenance
from bayes_stenosis.run import (
    RunFolder,
    atomic_run_folder,
    check_output_folder,
    load_run,
    sha256_file,
    write_json,
)

DEFAULT_SEED = 20261207
DEFAULT_TARGET = 0.8
FAST_PATH = (
    "fast path: each trial's cell estimates N(delta, 2 Sigma / n) with Sigma the per-patient covariance of changes "
    "taken as known, analysed in closed form under a normal analysis prior (or a flat one), the joint scopes by "
    "Genz's multivariate normal integration; adequate for per-arm n >= 30 or so (t quantile with 2n - 2 df within "
    "2 % of the normal), not a full refit of the package's model"
)
REFIT_PATH = (
    "full refit: each trial's patients simulated (changes N(mu_arm, Sigma)), reported as arm summaries (mean and "
    "SD of change per arm and cell) and fitted with the package's model under the run's spec and prior set "
    "(one compile per model structure per worker); P(equivalence) from the posterior draws"
)
METHODS = ("fast", "refit")


@dataclass(frozen=True)
class DesignResult:
    """The design table, the n reaching the target, the trials' rows, where they were written, and the speed."""

    design: pd.DataFrame
    target: pd.DataFrame
    trials: pd.DataFrame
    folder: Path | None
    manifest: dict


def design_analysis(
    run: str | Path | RunFolder | DesignInputs,
    *,
    n_per_arm: list[int],
    trials: int = 1000,
    seed: int = DEFAULT_SEED,
    target: float = DEFAULT_TARGET,
    effect: float | None = None,
    design_prior: str = "draws",
    change_sd: float | None = None,
    analysis_prior: str = "run",
    out: str | Path | None = None,
    overwrite: bool = False,
    workers: int | None = None,
    scheduler: str | None = None,
    client=None,
    batch_size: int | None = None,
    progress=None,
    method: str = "fast",
    refit: RefitSettings | None = None,
) -> DesignResult:
    """Assurance of a confirmatory trial at each per-arm n (the fast path: :mod:`bayes_stenosis.design.fast`).

    Parameters
    ----------
    run
        A run folder (its posterior is the design prior) or ready :class:`DesignInputs`.
    n_per_arm
        The per-arm sample sizes of the curve.
    trials, seed
        Simulated trials per n (the same trials at every n) and the root seed of their streams.
    target
        The assurance whose smallest n is reported.
    effect, design_prior, change_sd, analysis_prior
        See :func:`bayes_stenosis.design.inputs.design_inputs_from_run`.
    out
        The design folder to write (None: nothing written; the trials go to a temporary store). A killed
        run resumes from ``.<name>.trials/`` beside it, removed once the folder is published.
    workers, scheduler, client
        A ``LocalCluster`` of ``workers`` processes (default: the CPUs), an existing scheduler, or a
        ``distributed.Client`` to use as it is.
    batch_size
        Trials per task sent to a worker (default 25 on the fast path, 1 with refits).
    method
        ``"fast"`` (closed form, :mod:`bayes_stenosis.design.fast`) or ``"refit"`` (each trial fitted with
        the package's model, :mod:`bayes_stenosis.design.refit`, with ``refit``'s sampler settings).
    """
    if not 0 < target < 1:
        raise ValueError(f"target assurance must be in (0, 1) (got {target})")
    if trials < 1:
        raise ValueError(f"trials must be >= 1 (got {trials})")
    if out is not None:  # a path that cannot be written is refused before any work
        out = check_output_folder(out, overwrite=overwrite, what="design folder")
    task, source, notes = design_task(
        run,
        n_per_arm,
        method,
        refit,
        effect=effect,
        design_prior=design_prior,
        change_sd=change_sd,
        analysis_prior=analysis_prior,
    )
    batch_size = batch_size or (1 if method == "refit" else 25)
    settings = {
        "n_per_arm": list(task.ns),
        "trials": trials,
        "seed": seed,
        "target_assurance": target,
        "interval": f"{INTERVAL_PROB:.0%} Clopper-Pearson (exact binomial) Monte Carlo intervals",
        "method": REFIT_PATH if method == "refit" else FAST_PATH,
        **({"refit_sampler": vars(task.sampler)} if method == "refit" else {}),
        "assumptions": notes,
        "threshold": task.inputs.threshold,
        "simulated": "every trial is simulated (seeded); nothing here is observed data",
    }
    engine_args = (trials, seed, client, workers, scheduler, batch_size, progress)
    if out is None:
        with tempfile.TemporaryDirectory(prefix="design-trials-") as store:
            rows, engine = simulate(task, Path(store), *engine_args)
        design = design_table(rows)
        return DesignResult(
            design, target_table(design, target), rows, None, {**source, "settings": settings, "engine": engine}
        )
    store = out.parent / f".{out.name}.trials"
    with atomic_run_folder(out, overwrite=overwrite, what="design folder") as tmp:
        rows, engine = simulate(task, store, *engine_args)
        design = design_table(rows)
        targets = target_table(design, target)
        manifest = {**provenance(__version__), "kind": "design", **source, "settings": settings, "engine": engine}
        how = "full refits" if method == "refit" else "fast path"
        title = f"Confirmatory trial design, {source.get('study', 'given inputs')} (simulated trials, {how})"
        write_design_files(tmp, design, targets, rows, manifest, target=target, title=title)
    shutil.rmtree(store, ignore_errors=True)  # published: the trials are in trials.csv.gz
    return DesignResult(design, targets, rows, out, manifest)


def design_task(run, n_per_arm, method: str, refit: RefitSettings | None, **from_run) -> tuple:
    """The trial task (fast or refit), the input run's identity and the assumptions in words."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS} (got {method!r})")
    ns = tuple(sorted({int(n) for n in n_per_arm}))
    if isinstance(run, DesignInputs):
        if method == "refit":
            raise ValueError("the full refit needs a run folder (its study, spec and prior set)")
        return FastTrial(run, ns), {"inputs": "given directly (Python API)"}, run.notes
    folder = run if isinstance(run, RunFolder) else load_run(run)
    inputs = design_inputs_from_run(folder, **from_run)
    if method == "refit":
        task = refit_trial_from_run(folder, inputs, ns, refit or RefitSettings())
    else:
        task = FastTrial(inputs, ns)
    return task, run_source(folder), inputs.notes


def write_design_files(
    folder: Path, design: pd.DataFrame, targets: pd.DataFrame, rows: pd.DataFrame, manifest: dict, *, target, title
) -> None:
    """The design folder's files: the curve, the n reaching the target, every trial's rows, the figure, the
    manifest (its checksums are added on publish)."""
    design.to_csv(folder / "design.csv", index=False)
    targets.to_csv(folder / "target_n.csv", index=False)
    rows.to_csv(folder / "trials.csv.gz", index=False)  # every trial x n x scope: large, compressed
    plot_assurance(design, folder / "assurance.png", target=target, title=title)
    write_json(folder / "manifest.json", manifest)


def run_source(run: RunFolder) -> dict:
    """The input run, identified: its path, the SHA-256 of its manifest (which holds the checksum of
    every file of the run), study, spec, prior set and seed."""
    manifest = run.manifest
    return {
        "input_run": str(run.path),
        "input_run_manifest_sha256": sha256_file(run.path / "manifest.json"),
        "study": manifest["study"]["id"],
        "spec": manifest["spec"]["name"],
        "prior_set": manifest.get("prior_set"),
        "input_run_seed": manifest.get("sampler", {}).get("seed"),
    }


def simulate(task, store, trials, seed, client, workers, scheduler, batch_size, progress):
    """The trials' rows, on the given client or on a cluster opened (and closed) here, and what ran them."""
    opened = nullcontext((client, None)) if client is not None else dask_client(workers=workers, scheduler=scheduler)
    with opened as (active, info):
        start = time.perf_counter()
        report = map_trials(
            task, trials, root_seed=seed, store_path=store, client=active, batch_size=batch_size, progress=progress
        )
        engine = {
            "cluster": info.as_dict() if info is not None else {"kind": "client given"},
            "trials_computed": report.n_computed,
            "trials_resumed": report.n_resumed,
            "seconds": round(time.perf_counter() - start, 3),
            "trials_per_second": round(report.trials_per_second, 3),
            "batch_size": batch_size,
        }
    return report.table, engine
