r"""The published coverage runs (``bayes-stenosis validation coverage``): their trials, files and merging.

A run simulates ``trials`` patient-level trials of one design under one kind of truth, fits each with
:func:`~bayes_stenosis.calibration.coverage_study` and writes, per truth kind,
``coverage_<kind>_trials.csv`` (one row per trial x cell) and ``coverage_<kind>.json`` (per-cell and
pooled coverage and equivalence rates with their intervals, the settings, the commit). A run may be
split into trial ranges and the parts joined by :func:`merge_coverage`.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_stenosis import simulation as sim
from bayes_stenosis.calibration.cases import ODI, PRIOR_SET, RMDQ, TARGET_ACCEPT, exchangeable_correlation, model_for
from bayes_stenosis.calibration.coverage import (
    SimulatedTrial,
    cell_columns,
    coverage_study,
    coverage_study_on_engine,
    draw_truths_from_prior,
    first_within_scale,
    summarise,
)
from bayes_stenosis.inference import SamplerSettings
from bayes_stenosis.provenance import git_commit
from bayes_stenosis.spec import ModelSpec, load_spec

TRUTH_KINDS = ("prior", "zero", "margin")
COVERAGE_LEVELS = ("arm_summary", "arm_summary_change", "contrast", "ipd")
COVERAGE_OUTCOMES = {"ODI": ODI, "RMDQ": RMDQ}


def coverage_truth(
    *, level: str, n: int, outcomes: Sequence[str], outcome_corr: float, follow_up: Sequence[float]
) -> sim.TrialTruth:
    """The design of a coverage run: its outcomes, times and n per arm, delta = 0.

    ``level = "ipd"`` fits the simulated patients themselves. Their outcomes get an unbounded scale
    (instrument "other", range +-1000) so that no score is clipped and the truth holds exactly.
    """
    chosen = tuple(COVERAGE_OUTCOMES[o] for o in outcomes)
    if level == "ipd":
        chosen = tuple(dataclasses.replace(o, instrument="other", scale_min=-1000.0, scale_max=1000.0) for o in chosen)
    return sim.default_truth(
        outcomes=chosen,
        outcome_corr=exchangeable_correlation(len(chosen), outcome_corr),
        follow_up=tuple(float(t) for t in follow_up),
        change_reference=np.array([[-0.8 * o.sd for o in chosen]] * len(follow_up)),
        n_per_arm=(n, n),
    )


def trial_maker(
    truth_kind: str, base: sim.TrialTruth, trials: int, root: Path, *, level: str, seed: int, spec: ModelSpec
) -> tuple[Callable[[int], SimulatedTrial], int]:
    """``k -> trial k`` of a run (patients seeded ``seed + 1 + k``, fitted with that seed), and the
    number of prior draws refused as beyond the scales (``prior`` truths only).

    ``prior``: the first ``trials`` prior draws whose mean changes fit the scales
    (:func:`~bayes_stenosis.calibration.first_within_scale`); ``zero``: delta = 0 in every cell;
    ``margin``: delta = the margin, in favour of the reference arm.
    """
    margins = np.array([[o.margin for o in base.outcomes]] * len(base.follow_up))
    prior, rejected = None, 0
    if truth_kind == "prior":
        template = sim.write_study(
            root / "template", base, sim.simulate_patients(base, seed=seed), levels=[level], seed=seed
        )
        forward, _ = model_for(template, spec, PRIOR_SET, prior_sampling=True)
        width = np.array([o.scale_max - o.scale_min for o in base.outcomes])
        draws = draw_truths_from_prior(forward, 3 * trials, seed=seed)
        keep, rejected = first_within_scale(draws["change_natural"], width, trials)
        prior = {k: v[keep] for k, v in draws.items()}
    elif truth_kind not in TRUTH_KINDS:
        raise ValueError(f"unknown truth kind {truth_kind!r} (expected one of {', '.join(TRUTH_KINDS)})")

    def make(k: int) -> SimulatedTrial:
        if truth_kind == "prior":
            truth = dataclasses.replace(
                base, change_reference=prior["change_natural"][k, 0], delta=prior["delta_natural"][k]
            )
        else:
            truth = dataclasses.replace(base, delta=np.zeros_like(margins) if truth_kind == "zero" else margins.copy())
        s = seed + 1 + k
        patients = sim.simulate_patients(truth, seed=s)
        folder = sim.write_study(root / f"rep{k}", truth, patients, levels=[level], seed=s)
        return SimulatedTrial(folder, np.asarray(truth.delta), s)

    return make, rejected


def coverage_run(
    trials: int,
    truth_kind: str,
    out: Path,
    *,
    seed: int = 2024,
    level: str = "arm_summary",
    n: int = 20,
    prob: float = 0.9,
    chains: int = 2,
    draws: int = 500,
    tune: int = 500,
    outcomes: Sequence[str] = ("ODI", "RMDQ"),
    outcome_corr: float = 0.75,
    follow_up: Sequence[float] = (8.0,),
    trial_range: tuple[int, int] | None = None,
    log=print,
    client=None,
) -> dict:
    r"""90 % interval coverage of each delta and how often "equivalent" is declared, written to ``out``.

    ``truth_kind``: ``prior`` (truths drawn from the model's prior: coverage nominal by construction),
    ``zero`` or ``margin`` (the frequentist type-I error of the equivalence decision). The trials are
    simulated at patient level (correlated outcomes and times, baseline-follow-up correlation, n per
    arm) and summarised as the evidence ``level``; "equivalent" is declared in a cell when
    P(|delta| < margin) >= the decision threshold of ``models/default.toml``.

    ``outcome_corr`` is the patients' correlation between outcomes at one visit. The correlation of
    two outcomes' change scores it implies, :math:`R (2 - \rho_1 - \rho_2) / (2\sqrt{(1-\rho_1)(1-\rho_2)})`,
    is recorded (:func:`change_score_correlation`): it is the truth of the model's error correlation
    ``r_outcome``, which two arms' summaries cannot identify.

    ``trial_range = (start, stop)`` fits only trials ``start <= k < stop`` of the ``trials`` planned:
    their truths and seeds are those of the whole run, so parts joined by :func:`merge_coverage` give
    the numbers of the whole run.

    ``client`` (a ``distributed.Client``): the trials are fitted on its workers
    (:func:`~bayes_stenosis.calibration.coverage_study_on_engine`), each saved in
    ``out/.coverage_<truth>.trials/`` as it arrives (a killed run resumes from there; removed at the end);
    the rows are those of the serial run.
    """
    first, stop = _checked_trial_range(trial_range, trials)
    follow_up = tuple(float(t) for t in follow_up)
    spec, _ = load_spec()
    commit = git_commit()  # of the code this run uses (HEAD may move while it runs)
    settings = SamplerSettings(
        name="nutpie", chains=chains, draws=draws, tune=tune, target_accept=TARGET_ACCEPT, seed=0
    )
    base = coverage_truth(level=level, n=n, outcomes=outcomes, outcome_corr=outcome_corr, follow_up=follow_up)
    start = time.perf_counter()

    def after_trial(k: int, trial: SimulatedTrial, rows: list[dict]) -> None:
        shutil.rmtree(trial.folder)  # a trial's folder is only needed for its fit
        if (k + 1) % 25 == 0:
            log(f"  coverage {truth_kind}: {k + 1}/{trials} trials ({time.perf_counter() - start:.0f} s)")
            coverage_summary(rows, out, truth_kind, trials, n, level, prob, start, commit)  # partial results

    with tempfile.TemporaryDirectory() as work:
        make, rejected = trial_maker(truth_kind, base, trials, Path(work), level=level, seed=seed, spec=spec)
        if client is None:
            result = coverage_study(
                make, spec, PRIOR_SET, range(first, stop), settings, prob=prob, after_trial=after_trial
            )
        else:
            store = out / f".coverage_{truth_kind}.trials"
            what = [truth_kind, trials, seed, level, n, prob, chains, draws, tune, list(outcomes), outcome_corr]
            result = coverage_study_on_engine(
                make,
                spec,
                PRIOR_SET,
                range(first, stop),
                settings,
                client=client,
                store_path=store,
                fingerprint=json.dumps([*what, list(follow_up), commit]),
                prob=prob,
                progress=LogProgress(log, truth_kind),
            )
    summary = coverage_summary(result.replicates, out, truth_kind, trials, n, level, prob, start, commit)
    if client is not None:
        shutil.rmtree(out / f".coverage_{truth_kind}.trials", ignore_errors=True)  # the trials CSV has every row
    summary.update(
        settings={"chains": chains, "draws": draws, "tune": tune, "target_accept": TARGET_ACCEPT, "seed": seed},
        trial_range=[first, stop],
        prior_draws_rejected_impossible_change=rejected,
        simulation={
            "outcome_corr": outcome_corr,
            "change_score_corr": change_score_correlation(base),
            "follow_up": list(follow_up),
        },
    )
    (out / f"coverage_{truth_kind}.json").write_text(json.dumps(summary, indent=2))
    return summary


class LogProgress:
    """Progress of a coverage run on the engine: a log line every 25 trials."""

    def __init__(self, log, truth_kind: str) -> None:
        self.log, self.kind, self.done, self.total = log, truth_kind, 0, 0
        self.start_time = time.perf_counter()

    def start(self, total: int, done: int) -> None:
        self.total, self.done = total, done
        if done:
            self.log(f"  coverage {self.kind}: {done}/{total} trials saved by an earlier run")

    def advance(self, k: int) -> None:
        self.done += k
        if self.done % 25 == 0 or self.done == self.total:
            elapsed = time.perf_counter() - self.start_time
            self.log(f"  coverage {self.kind}: {self.done}/{self.total} trials ({elapsed:.0f} s)")


def _checked_trial_range(trial_range: tuple[int, int] | None, trials: int) -> tuple[int, int]:
    """``(start, stop)`` of the trials to fit (all of them without a range), within the ``trials`` planned."""
    first, stop = trial_range if trial_range is not None else (0, trials)
    if not 0 <= first < stop <= trials:
        raise ValueError(f"trial range {first}:{stop} is not within the {trials} trials planned")
    return first, stop


def change_score_correlation(truth: sim.TrialTruth) -> list[list[float]]:
    """Correlation between outcomes of the patients' change scores (one follow-up) under ``truth``."""
    corr = sim.score_correlation(truth)
    n_o = len(truth.outcomes)
    k = np.hstack([-np.eye(n_o), np.eye(n_o)])  # follow-up minus baseline
    cov = k @ corr[: 2 * n_o, : 2 * n_o] @ k.T
    sd = np.sqrt(np.diag(cov))
    return np.round(cov / np.outer(sd, sd), 4).tolist()


def cell_entries(reps: pd.DataFrame, per_cell: pd.DataFrame) -> dict[str, dict]:
    """``coverage_<kind>.json``'s cells: keyed by outcome, or "week T outcome" when there are several times."""
    several_times = "time" in reps and reps["time"].nunique() > 1
    cells = {}
    for rec in per_cell.to_dict("records"):
        label = f"week {rec['time']:g} {rec['outcome']}" if several_times else rec["outcome"]
        cells[label] = {
            "coverage": float(rec["coverage"]),
            "coverage_ci95": (float(rec["ci_low"]), float(rec["ci_high"])),
            "equivalent_declared": float(rec["equivalent_declared"]),
            "equivalent_ci95": (float(rec["equivalent_ci_low"]), float(rec["equivalent_ci_high"])),
            "trials": int(rec["replicates"]),
        }
    return cells


def coverage_summary(
    rows, out: Path, truth_kind: str, trials: int, n: int, level: str, prob: float, start: float, commit: str
) -> dict:
    """Coverage and equivalence-declaration rates with Clopper-Pearson intervals; writes the CSV + JSON.

    ``rows``: one per trial x cell (records or a DataFrame, :func:`~bayes_stenosis.calibration.trial_rows`);
    ``start``: the run's ``time.perf_counter()`` at its start (for the seconds it took).
    """
    reps = pd.DataFrame(rows)
    out.mkdir(parents=True, exist_ok=True)
    reps.to_csv(out / f"coverage_{truth_kind}_trials.csv", index=False)
    result = summarise(reps, prob)
    o = result.overall
    summary = {
        "truth": truth_kind,
        "trials_planned": trials,
        "trials_done": o["replicates"],
        "n_per_arm": n,
        "level": level,
        "prob": prob,
        "cells": cell_entries(reps, result.per_cell),
        "overall_coverage": o["coverage"],
        "overall_coverage_ci95": (o["ci_low"], o["ci_high"]),  # as if the cells were independent
        "overall_coverage_ci95_by_trial": o["ci_by_trial"],
        "max_rhat": o["max_rhat"],
        "divergent_trials": o["divergent_fits"],
        "seconds": round(time.perf_counter() - start, 1),
        "commit": commit,
    }
    (out / f"coverage_{truth_kind}.json").write_text(json.dumps(summary, indent=2))
    return summary


def merge_coverage(parts: Sequence[Path], truth_kind: str, out: Path) -> dict:
    """Join the trial ranges of one coverage run (see :func:`coverage_run`'s ``trial_range``) into ``out``.

    The parts must share every setting but the range. A trial fitted in two parts of the same commit
    must have the same rows in both (the same seed gives the same fit), else the merge stops; parts
    run at different commits keep the first part's fit of such a trial.
    """
    metas = [json.loads((p / f"coverage_{truth_kind}.json").read_text()) for p in parts]
    keys = ("trials_planned", "n_per_arm", "level", "prob", "settings", "simulation")
    for p, m in zip(parts[1:], metas[1:], strict=True):
        # a part stopped early has only its partial summary (no settings): compare what both record
        differ = [k for k in keys if k in m and k in metas[0] and m[k] != metas[0][k]]
        if differ:
            raise ValueError(f"{p}: coverage_{truth_kind}.json differs from {parts[0]} in {', '.join(differ)}")
    rows = pd.concat([pd.read_csv(p / f"coverage_{truth_kind}_trials.csv") for p in parts], ignore_index=True)
    rows = rows.drop_duplicates()  # a trial fitted twice with the same result is kept once
    cell = ["trial", *cell_columns(rows)]
    conflicting = rows[rows.duplicated(cell, keep=False)]["trial"]
    if len(conflicting) and len({m["commit"] for m in metas}) > 1:
        # other code (e.g. a reordered but equal graph) gives other Monte Carlo draws: keep the first part's
        rows = rows.drop_duplicates(cell, keep="first")
    elif len(conflicting):
        raise ValueError(f"trials {sorted(set(conflicting))} were fitted in two parts with different results")
    rows = rows.sort_values(cell, kind="stable")
    first = metas[0]
    commits = ", ".join(sorted({str(m["commit"]) for m in metas}))  # None: not run from a git checkout
    summary = coverage_summary(
        rows,
        out,
        truth_kind,
        first["trials_planned"],
        first["n_per_arm"],
        first["level"],
        first["prob"],
        time.perf_counter(),
        commits,
    )
    summary["seconds"] = round(sum(m["seconds"] for m in metas), 1)
    summary["merged_from"] = [str(p) for p in parts]
    for k in ("settings", "prior_draws_rejected_impossible_change", "simulation"):
        found = [m[k] for m in metas if k in m]
        if found:
            summary[k] = found[0]
    (out / f"coverage_{truth_kind}.json").write_text(json.dumps(summary, indent=2))
    return summary
