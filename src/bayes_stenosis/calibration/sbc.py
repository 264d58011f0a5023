r"""Simulation-based calibration (SBC) of every likelihood term, and the coverage study.

SBC (Talts, Betancourt, Simpson, Vehtari & Gelman 2018, arXiv:1804.06788). For a model
:math:`p(\theta)\,p(y \mid \theta)` and any scalar quantity :math:`f(\theta)`: draw
:math:`\tilde\theta \sim p(\theta)`, :math:`\tilde y \sim p(y \mid \tilde\theta)`, fit, and take
:math:`L` (near-)independent posterior draws :math:`\theta_1..\theta_L`. The rank
:math:`r = \#\{l : f(\theta_l) < f(\tilde\theta)\}` is uniform on :math:`\{0, \dots, L\}` exactly
when the fitted posterior is the true posterior of the generative model; a wrong likelihood, a
wrong prior or a sampler bias makes it non-uniform (posterior too narrow: U-shaped histogram; too
wide: hump; biased: sloped).

Here the data are simulated **from the model's own generative process**: ``pm.sample_prior_predictive``
on the package's model draws the parameters and the observed nodes together (the arm-summary
mean changes and reported squared SDs, the contrast estimates, the patients' baseline and follow-up
scores). For patient-level data the follow-up term is conditional on the baselines as covariates: the
replicate's baselines are drawn for the baseline term while the follow-ups are drawn given the template's
baselines, which the fit conditions on too (the likelihood factorises, so the ranks stay exactly uniform).
The threshold terms are
Potentials (a censored likelihood), so their data are simulated by hand from the same model: the
test statistic :math:`T = (Z + \lambda)/S`, :math:`Z \sim N(0, 1)`,
:math:`S = \sqrt{\chi^2_{df}/df}`, :math:`\lambda = \delta / (r\sqrt{2(1-\rho)}\,SE)` with the prior
draw's :math:`\delta, r, \rho`; the reported statement is the event :math:`|T| < c` ("P>0.05") or
:math:`T < -c` / :math:`T > c` ("P<0.05" in a direction). The event kind is part of the compiled
graph, so replicates are **grouped by their event pattern** (one compiled model per pattern; every
replicate is kept, none rejected, so the ranks are still exactly uniform under correct calibration).

Each case compiles its model once (nutpie, numba) and refits every replicate by swapping the data
(``compiled.with_data``); 2 chains on 2 cores (nutpie runs the chains in parallel threads, so one
replicate at a time already uses both cores of the CI machine). The pooled draws are thinned
to :math:`L` evenly spaced draws (``thin_to``); the bulk ESS of every ranked quantity is recorded
and the share of fits with ESS < L reported (below that the draws are not near-independent).

Uniformity test: per scalar quantity, Pearson's chi-square on the ranks in ``bins`` equal bins
(:math:`L + 1` divisible by ``bins``), and a Bonferroni correction over the case's quantities: the
case fails when some :math:`p < \alpha / K` (``alpha`` = 0.001 by default, so a correctly calibrated
case fails with probability at most 0.001).

Deliberately wrong likelihood (``wrong="se_as_sd"``): the fitted likelihood divides the standard
error by :math:`\sqrt{n}` once more, as when a reported standard error is taken for a standard
deviation (contrasts: :math:`SE / \sqrt{n_1 n_2 / (n_1 + n_2)}`; arm summaries: the reported SD
replaced by :math:`s / \sqrt n`). The posterior is then too narrow and the ranks pile up at 0 and
L; the test suite checks that the quick SBC detects it.

Run ``python -m bayes_stenosis.calibration sbc --mode quick|full [--cases ...] [--out DIR]`` and
``python -m bayes_stenosis.calibration coverage [--trials 500] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import math
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from bayes_stenosis import simulation as sim
from bayes_stenosis.provenance import git_commit
from bayes_stenosis.spec import ModelSpec, load_spec

PRIOR_SET = "weakly_informative"

# Outcomes of the simulated templates (the flagship's ODI and RMDQ; simulate.default_truth documents them)
ODI = sim.OutcomeTruth("ODI", "ODI", 0, 100, 45, 16, 0.6, 10)
RMDQ = sim.OutcomeTruth("RMDQ", "RMDQ", 0, 24, 14, 5, 0.5, 5)


@dataclass(frozen=True)
class Case:
    """One SBC case: a study design (evidence level, outcomes, times, n) and the quantities ranked."""

    name: str
    level: str  # a simulate.LEVELS evidence level for the template study
    quantities: tuple[str, ...]  # model variables ranked (every element of each)
    outcomes: tuple[sim.OutcomeTruth, ...] = (ODI,)
    follow_up: tuple[float, ...] = (8.0,)
    n_per_arm: tuple[int, int] = (20, 20)
    description: str = ""


CASES: dict[str, Case] = {
    c.name: c
    for c in (
        Case(
            "contrast",
            "contrast",
            ("Delta",),
            description="one reported between-arm difference with its SE (Normal likelihood)",
        ),
        Case(
            "arm_summary_change",
            "arm_summary_change",
            ("Delta", "mu_change", "sd_change_reference_arm", "sd_change_new_arm"),
            description="per-arm mean change and change SD (MVN of means, chi-square of reported SDs)",
        ),
        Case(
            "arm_summary_score",
            "arm_summary",
            ("Delta", "mu_change", "rho", "sd_baseline_new_arm", "sd_followup_new_arm"),
            description="per-arm baseline and follow-up score SDs, change SD through an uncertain rho ~ Beta",
        ),
        Case(
            "threshold",
            "threshold",
            ("Delta", "rho", "trial_sd_ratio", "change_sd_ratio"),
            description="one between-arm 'P<0.05' / 'P>0.05' statement (noncentral-t event, data augmentation)",
        ),
        Case(
            "hierarchical",
            "arm_summary",
            ("Delta", "delta", "mu_change", "tau", "sigma_change", "rho", "r_time", "r_outcome"),
            outcomes=(ODI, RMDQ),
            follow_up=(4.0, 8.0),
            description="default hierarchical spec: 2 outcomes x 2 times, score-form arm summaries, "
            "outcome deviations, tau, error correlations across times and outcomes",
        ),
        Case(
            "ipd",
            "ipd",
            ("Delta", "delta", "ipd_slope", "ipd_baseline_sd", "ipd_patient_sd", "ipd_residual_sd"),
            outcomes=(ODI, RMDQ),
            follow_up=(4.0, 8.0),
            description="patient-level scores, 2 outcomes x baseline + 2 follow-ups, 20 per arm: baseline MVN, "
            "ANCOVA follow-up with patient effects integrated out (marginal MVN per patient)",
        ),
    )
}


@dataclass(frozen=True)
class Mode:
    replicates: int
    chains: int
    draws: int
    tune: int
    thin_to: int  # L: posterior draws kept per replicate; ranks take L + 1 values
    bins: int


MODES = {
    # quick: the test suite; full: the release figures (VALIDATION.md)
    "quick": Mode(replicates=100, chains=2, draws=250, tune=300, thin_to=49, bins=10),
    "full": Mode(replicates=200, chains=2, draws=500, tune=500, thin_to=99, bins=10),
}
TARGET_ACCEPT = 0.95


# ---------------------------------------------------------------------------------------------
# Templates: a simulated study folder of the case's design (its numbers are replaced per replicate)
# ---------------------------------------------------------------------------------------------

# event kind -> how the abstract states it (lower is better: T = (new - ref)/SE < -c favours new)
_EVENT_STATEMENT = {
    "inside": (">", ""),
    "below": ("<", "favours_new"),
    "above": ("<", "favours_reference"),
}


def case_template(case: Case, folder: Path, seed: int, events: Sequence[str] | None = None) -> Path:
    """Write the case's study folder (simulated, seeded). For thresholds, one between-arm statement
    per cell with the given event kinds."""
    truth = sim.default_truth(
        outcomes=case.outcomes,
        outcome_corr=exchangeable_correlation(len(case.outcomes), 0.75),
        follow_up=case.follow_up,
        change_reference=np.zeros((len(case.follow_up), len(case.outcomes))),
        n_per_arm=case.n_per_arm,
        # ipd.csv refuses scores beyond the scale; the template's patients only supply the baselines
        # the follow-up term conditions on (the replicates' scores come from the model)
        clip=case.level == "ipd",
    )
    patients = sim.simulate_patients(truth, seed=seed)
    sim.write_study(folder, truth, patients, levels=[case.level], seed=seed, overwrite=True)
    if case.level == "threshold":
        path = folder / "thresholds.csv"
        rows = pd.read_csv(path, keep_default_na=False)
        rows = rows[rows["comparison"] == "between"].reset_index(drop=True)
        events = list(events) if events is not None else ["inside"] * len(rows)
        rows["relation"] = [_EVENT_STATEMENT[e][0] for e in events]
        rows["direction"] = [_EVENT_STATEMENT[e][1] for e in events]
        rows["p_value"] = ""
        rows["note"] = "SBC template: the statement is replaced by a simulated event per replicate"
        rows.to_csv(path, index=False)
    return folder


def exchangeable_correlation(k: int, r: float) -> np.ndarray:
    return (1 - r) * np.eye(k) + r * np.ones((k, k))


def build_case_model(folder: Path, spec: ModelSpec, prior_sampling: bool = False):
    from bayes_stenosis.calibration.coverage import model_for

    return model_for(folder, spec, PRIOR_SET, prior_sampling=prior_sampling)


# ---------------------------------------------------------------------------------------------
# Prior draws and simulated data from the model itself
# ---------------------------------------------------------------------------------------------


def quantity_names(model, case: Case) -> list[str]:
    return [q for q in case.quantities if q in model.named_vars]


def observed_data_names(model) -> dict[str, str]:
    """observed RV name -> the pm.Data container holding its observed value."""
    return {rv.name: model.rvs_to_values[rv].name for rv in model.observed_RVs}


def prior_draws(model, names: Sequence[str], draws: int, seed: int) -> dict[str, np.ndarray]:
    """Joint prior (and prior-predictive) draws of ``names``: arrays with a leading draw axis."""
    import pymc as pm

    from bayes_stenosis.model import check_forward_sampling

    check_forward_sampling(model)

    with model, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Potentials.*")
        idata = pm.sample_prior_predictive(draws=draws, random_seed=seed, var_names=list(names))
    out = {}
    for group in ("prior", "prior_predictive"):
        if group in idata.groups():
            for name, arr in idata[group].data_vars.items():
                out[name] = arr.values[0]
    return out


def simulate_threshold_events(model, inputs, spec: ModelSpec, draws: dict, rng: np.random.Generator) -> list[tuple]:
    """Per prior draw, the event pattern of the between-arm statements (model's generative process).

    :math:`T_k = (Z_k + \\lambda_k)/S_k` with :math:`Z` independent across statements (one statement per
    cell in the SBC design) and :math:`S_k^2 \\sim \\chi^2_{df}/df`.
    """
    from bayes_stenosis.model import threshold_design

    design = threshold_design(inputs, spec)
    if (design["comparison"] != "between").any():
        raise ValueError("the SBC threshold design has between-arm statements only")
    t_idx = design["time_index"].to_numpy()
    o_idx = design["outcome_index"].to_numpy()
    delta = draws["delta"][:, t_idx, o_idx]
    ratio = draws["change_sd_ratio"][:, o_idx]
    lam = delta / (ratio * design["se_factor"].to_numpy()[None, :])
    n, k = lam.shape
    dfs = design["df"].to_numpy(dtype=float)
    s = np.ones((n, k))
    finite = np.isfinite(dfs)
    if finite.any():
        s[:, finite] = np.sqrt(rng.chisquare(dfs[finite], size=(n, int(finite.sum()))) / dfs[finite])
    t_stat = (rng.standard_normal((n, k)) + lam) / s
    crit = design["crit"].to_numpy()[None, :]
    kinds = np.where(np.abs(t_stat) < crit, "inside", np.where(t_stat < 0, "below", "above"))
    return [tuple(row) for row in kinds]


def wrong_data(values: dict[str, np.ndarray], inputs, variant: str | None) -> dict[str, np.ndarray]:
    """The data as a deliberately wrong likelihood sees them (module docstring); ``None``: unchanged."""
    if variant is None:
        return values
    if variant != "se_as_sd":
        raise ValueError(f"unknown wrong-likelihood variant {variant!r}")
    out = dict(values)
    if "contrast_se" in out:
        sizes = list(inputs.arm_sizes.values())
        n_eff = sizes[0] * sizes[1] / (sizes[0] + sizes[1])
        out["contrast_se"] = out["contrast_se"] / math.sqrt(n_eff)
    for name in list(out):
        if name.startswith(("sd_change_", "sd_baseline_", "sd_followup_")) and name.endswith("_sq"):
            arm = name.removesuffix("_sq").split("_", 2)[2]
            n_key = f"n_baseline_{arm}" if name.startswith("sd_baseline_") else f"n_{arm}"
            out[name] = out[name] / out[n_key]  # (s / sqrt(n))^2
    return out


# ---------------------------------------------------------------------------------------------
# Fitting and ranks
# ---------------------------------------------------------------------------------------------


def _fitter(model, mode: Mode):
    """A compiled nutpie model refitted with new data (compile once, ``with_data`` per replicate)."""
    from bayes_stenosis.inference import CompiledModel, SamplerSettings

    settings = SamplerSettings(
        name="nutpie", chains=mode.chains, draws=mode.draws, tune=mode.tune, target_accept=TARGET_ACCEPT, seed=0
    )
    return CompiledModel(model, settings)


def thin_draws(draws: np.ndarray, keep: int) -> np.ndarray:
    """(chain, draw, ...) -> (keep, ...) evenly spaced over the pooled chains."""
    pooled = draws.reshape(-1, *draws.shape[2:])
    idx = np.linspace(0, pooled.shape[0] - 1, keep).round().astype(int)
    return pooled[idx]


def _element_labels(name: str, shape: tuple[int, ...], coords: dict[str, list], dims: Sequence[str]) -> list[str]:
    if not shape:
        return [name]
    labels = []
    for index in np.ndindex(*shape):
        parts = []
        for d, i in zip(dims, index, strict=False):
            parts.append(str(coords[d][i]) if d in coords else str(i))
        labels.append(f"{name}[{','.join(parts)}]")
    return labels


def ranks_of_truth(idata, truth: dict[str, np.ndarray], names: Sequence[str], keep: int) -> list[dict]:
    """Rank of each scalar truth among ``keep`` thinned posterior draws, with the bulk ESS."""
    import arviz as az

    posterior = idata.posterior
    ess = az.ess(posterior[list(names)], method="bulk")
    rows = []
    for name in names:
        arr = posterior[name]
        thinned = thin_draws(arr.values, keep)
        coords = {d: list(arr.coords[d].values) for d in arr.dims[2:]}
        labels = _element_labels(name, arr.shape[2:], coords, arr.dims[2:])
        t = np.asarray(truth[name]).reshape(-1)
        flat = thinned.reshape(keep, -1)
        e = np.asarray(ess[name].values).reshape(-1)
        for j, label in enumerate(labels):
            rows.append({"quantity": label, "rank": int((flat[:, j] < t[j]).sum()), "ess_bulk": float(e[j])})
    return rows


def uniformity(ranks: pd.DataFrame, keep: int, bins: int) -> pd.DataFrame:
    """Chi-square test of uniform ranks on {0..keep} in ``bins`` equal bins, per quantity."""
    if (keep + 1) % bins:
        raise ValueError(f"L + 1 = {keep + 1} must be divisible by the number of bins {bins}")
    out = []
    for quantity, sub in ranks.groupby("quantity", sort=False):
        counts = np.bincount(sub["rank"].to_numpy().astype(int) * bins // (keep + 1), minlength=bins)
        chi2, p = stats.chisquare(counts)
        out.append(
            {
                "quantity": quantity,
                "replicates": len(sub),
                "chi2": float(chi2),
                "p_value": float(p),
                "mean_rank_fraction": float(sub["rank"].mean() / keep),
                "share_ess_below_L": float((sub["ess_bulk"] < keep).mean()),
                "counts": counts.tolist(),
            }
        )
    return pd.DataFrame(out)


@dataclass
class SBCResult:
    case: str
    mode: str
    wrong: str | None
    ranks: pd.DataFrame
    tests: pd.DataFrame
    alpha: float
    keep: int
    bins: int
    seconds: float
    compile_seconds: float
    divergent_fits: int
    patterns: dict = field(default_factory=dict)

    @property
    def threshold(self) -> float:
        """Bonferroni-corrected per-quantity level."""
        return self.alpha / len(self.tests)

    @property
    def passed(self) -> bool:
        return bool((self.tests["p_value"] >= self.threshold).all())

    def text(self) -> str:
        worst = self.tests.loc[self.tests["p_value"].idxmin()]
        label = self.case + (f" [wrong likelihood: {self.wrong}]" if self.wrong else "")
        return (
            f"{label}: {'PASS' if self.passed else 'FAIL'} - {len(self.tests)} quantities, "
            f"{int(self.tests['replicates'].max())} replicates, smallest p = {worst['p_value']:.3g} "
            f"({worst['quantity']}) vs Bonferroni level {self.threshold:.2g}; {self.seconds:.0f} s"
        )


def run_case(
    case: Case,
    mode: Mode,
    *,
    seed: int,
    spec: ModelSpec | None = None,
    wrong: Sequence[str | None] = (None,),
    alpha: float = 0.001,
    workdir: Path | None = None,
    mode_name: str = "",
    log=print,
) -> list[SBCResult]:
    """SBC of one case: prior draws, simulated data, compile-once refits, ranks and their test.

    One result per entry of ``wrong`` (``None`` = the package's likelihood); the variants share the
    prior draws, the simulated data and the compiled models (only the fitted data differ).
    """
    spec = spec or load_spec()[0]
    start = time.perf_counter()
    seeds = np.random.SeedSequence(seed).spawn(3)
    prior_seed = int(seeds[0].generate_state(1)[0])
    fit_seeds = seeds[1].generate_state(mode.replicates)
    rng = np.random.default_rng(seeds[2])
    tmp = tempfile.TemporaryDirectory() if workdir is None else None
    root = Path(tmp.name) if tmp else Path(workdir)
    try:
        template = case_template(case, root / f"{case.name}_template", seed)
        model, inputs = build_case_model(template, spec)
        # truths and data from the generative (forward) form of the same model
        forward, _ = build_case_model(template, spec, prior_sampling=True)
        names = quantity_names(model, case)
        observed = observed_data_names(model)
        extra = ["delta", "change_sd_ratio"] if case.level == "threshold" else []
        draws = prior_draws(forward, sorted({*names, *observed, *extra}), mode.replicates, prior_seed)
        base_values = None
        if observed:
            from bayes_stenosis.model import data_values

            base_values = data_values(model)
        if case.level == "threshold":
            patterns = simulate_threshold_events(model, inputs, spec, draws, rng)
        else:
            patterns = [()] * mode.replicates
        fitters: dict = {}
        if case.level != "threshold":
            fitters[()] = _fitter(model, mode)
        rows = {v: [] for v in wrong}
        divergent = dict.fromkeys(wrong, 0)
        for r, v in ((r, v) for v in wrong for r in range(mode.replicates)):
            pattern = patterns[r]
            if pattern not in fitters:
                folder = case_template(case, root / f"{case.name}_{'_'.join(pattern)}", seed, events=pattern)
                fitters[pattern] = _fitter(build_case_model(folder, spec)[0], mode)
            values = None
            if observed:
                values = dict(base_values)
                for obs, data_name in observed.items():
                    values[data_name] = np.asarray(draws[obs][r], dtype=float)
                values = wrong_data(values, inputs, v)
            idata = fitters[pattern].fit_values(values, seed=int(fit_seeds[r]))
            divergent[v] += int(idata.sample_stats["diverging"].sum() > 0)
            truth = {name: draws[name][r] for name in names}
            for row in ranks_of_truth(idata, truth, names, mode.thin_to):
                rows[v].append({"replicate": r, "pattern": "/".join(pattern), **row})
            if (r + 1) % 50 == 0:
                label = case.name + (f" (wrong: {v})" if v else "")
                log(f"  {label}: {r + 1}/{mode.replicates} replicates ({time.perf_counter() - start:.0f} s)")
    finally:
        if tmp:
            tmp.cleanup()
    counts = pd.Series(["/".join(p) for p in patterns]).value_counts().to_dict()
    results = []
    for v in wrong:
        ranks = pd.DataFrame(rows[v])
        results.append(
            SBCResult(
                case=case.name,
                mode=mode_name,
                wrong=v,
                ranks=ranks,
                tests=uniformity(ranks, mode.thin_to, mode.bins),
                alpha=alpha,
                keep=mode.thin_to,
                bins=mode.bins,
                seconds=time.perf_counter() - start,
                compile_seconds=sum(f.compile_seconds for f in fitters.values()),
                divergent_fits=divergent[v],
                patterns=counts if case.level == "threshold" else {},
            )
        )
    return results


def plot_ranks(result: SBCResult, path: Path) -> Path:
    """Rank histograms with the 99 % band of a bin count under uniformity (Talts et al. Fig. 3)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tests = result.tests
    k = len(tests)
    ncol = min(4, k)
    nrow = math.ceil(k / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(max(3.2 * ncol, 7.0), 2.5 * nrow + 0.4), squeeze=False)
    for ax, (_, row) in zip(axes.ravel(), tests.iterrows(), strict=False):
        counts = np.asarray(row["counts"])
        n = counts.sum()
        lo, hi = stats.binom.ppf([0.005, 0.995], n, 1 / result.bins)
        ax.axhspan(lo, hi, color="0.85", zorder=0)
        ax.axhline(n / result.bins, color="0.5", lw=0.8)
        ax.bar(np.arange(result.bins), counts, width=0.9, color="tab:blue", zorder=1)
        ax.set_title(f"{row['quantity']}\np = {row['p_value']:.2g}", fontsize=8)
        ax.set_xticks([])
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[k:]:
        ax.axis("off")
    wrong = f", WRONG likelihood ({result.wrong})" if result.wrong else ""
    fig.suptitle(
        f"SBC ranks: {result.case}{wrong}; {int(tests['replicates'].max())} replicates, L = {result.keep}, "
        f"grey = 99 % band per bin",
        fontsize=9,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def run_label(case: str, wrong: str | None) -> str:
    """File stem of one case's outputs in a run folder (``<label>_ranks.csv``, ``_tests.csv``, ``_ranks.png``)."""
    return case + (f"_wrong_{wrong}" if wrong else "")


def load_results(folder: Path) -> list[SBCResult]:
    """The results of a finished SBC run, rebuilt from its saved ranks (uniformity recomputed, no refitting)."""
    summary = json.loads((folder / "sbc_summary.json").read_text())
    keep, bins = summary["settings"]["thin_to"], summary["settings"]["bins"]
    results = []
    for res in summary["results"]:
        ranks = pd.read_csv(folder / f"{run_label(res['case'], res['wrong'])}_ranks.csv")
        results.append(
            SBCResult(
                case=res["case"],
                mode=summary["mode"],
                wrong=res["wrong"],
                ranks=ranks,
                tests=uniformity(ranks, keep, bins),
                alpha=summary["alpha"],
                keep=keep,
                bins=bins,
                seconds=res["seconds"],
                compile_seconds=res["compile_seconds"],
                divergent_fits=res["divergent_fits"],
            )
        )
    return results


def replot(folder: Path) -> list[Path]:
    """Redraw every rank histogram of a finished SBC run from its saved ranks (no refitting)."""
    return [
        plot_ranks(result, folder / f"{run_label(result.case, result.wrong)}_ranks.png")
        for result in load_results(folder)
    ]


def run_sbc(
    mode_name: str,
    cases: Sequence[str],
    out: Path,
    seed: int,
    wrong: Sequence[str | None] = (None,),
    replicates: int | None = None,
    log=print,
) -> list[SBCResult]:
    mode = MODES[mode_name]
    if replicates is not None:  # a trial run of the mode's sampler settings on fewer replicates
        mode = dataclasses.replace(mode, replicates=replicates)
    out.mkdir(parents=True, exist_ok=True)
    results, summary = [], []
    commit = git_commit()
    for i, name in enumerate(cases):
        log(f"SBC {name} ({mode_name}) ...")
        # the wrong variant scales standard errors: threshold statements and patient scores carry none
        variants = (None,) if CASES[name].level in ("threshold", "ipd") else tuple(wrong)
        for res in run_case(CASES[name], mode, seed=seed + i, wrong=variants, mode_name=mode_name, log=log):
            variant = res.wrong
            label = run_label(name, variant)
            res.ranks.to_csv(out / f"{label}_ranks.csv", index=False)
            res.tests.to_csv(out / f"{label}_tests.csv", index=False)
            plot_ranks(res, out / f"{label}_ranks.png")
            log("  " + res.text())
            summary.append(
                {
                    "case": name,
                    "wrong": variant,
                    "passed": res.passed,
                    "replicates": int(res.tests["replicates"].max()),
                    "quantities": len(res.tests),
                    "min_p": float(res.tests["p_value"].min()),
                    "bonferroni_level": res.threshold,
                    "p_values": dict(zip(res.tests["quantity"], res.tests["p_value"].round(4), strict=True)),
                    "share_ess_below_L": float(res.tests["share_ess_below_L"].max()),
                    "divergent_fits": res.divergent_fits,
                    "patterns": res.patterns,
                    "seconds": round(res.seconds, 1),
                    "compile_seconds": round(res.compile_seconds, 1),
                }
            )
            results.append(res)
            (out / "sbc_summary.json").write_text(
                json.dumps(
                    {
                        "mode": mode_name,
                        "settings": dataclasses.asdict(mode),
                        "seed": seed,
                        "commit": commit,
                        "alpha": 0.001,
                        "results": summary,
                    },
                    indent=2,
                )
            )
    return results


# ---------------------------------------------------------------------------------------------
# Coverage study (issue 9 section 2): patient-level simulation -> arm summaries -> fit
# ---------------------------------------------------------------------------------------------


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
) -> dict:
    """90 % interval coverage of each delta and how often "equivalent" is declared.

    ``truth_kind``: ``prior`` (truths drawn from the model's prior: coverage nominal by construction),
    ``zero`` (delta = 0 in every cell) or ``margin`` (delta = the margin, in favour of the reference
    arm: the frequentist type-I error of the equivalence decision). The trials are simulated at
    patient level (``simulate``: correlated outcomes and times, baseline-follow-up correlation, n per
    arm) and summarised as the evidence ``level``; "equivalent" is declared in a cell when
    P(|delta| < margin) >= 0.975 (the default decision rule, ``models/default.toml``).

    ``outcome_corr`` is the patients' correlation between outcomes at one visit (``simulate``'s
    :math:`R`, exchangeable). The correlation of two outcomes' change scores it implies,
    :math:`R (2 - \\rho_1 - \\rho_2) / (2\\sqrt{(1-\\rho_1)(1-\\rho_2)})`, is recorded: it is the
    truth of the model's error correlation ``r_outcome``, which two arms' summaries cannot identify.

    ``level = "ipd"`` fits the simulated patients themselves. Their outcomes get an unbounded scale
    (instrument "other", range +-1000) so that no score is clipped and the truth holds exactly, as in
    ``tests/test_ipd.py``; with two or more ``follow_up`` times the patient effects enter the model.

    ``trial_range = (start, stop)`` fits only trials ``start <= k < stop`` of the ``trials`` planned:
    their truths and seeds are those of the whole run, so the parts of a run split across processes
    or sessions, joined by :func:`merge_coverage`, give the numbers of the whole run.
    """
    from arviz import rhat

    from bayes_stenosis.calibration.coverage import (
        draw_truths_from_prior,
        first_within_scale,
        model_for,
    )
    from bayes_stenosis.inference import CompiledModel, SamplerSettings

    spec, _ = load_spec()
    threshold = spec.decision.threshold
    commit = git_commit()  # of the code this run uses (HEAD may move while it runs)
    known = {"ODI": ODI, "RMDQ": RMDQ}
    outcomes = tuple(known[o] for o in outcomes)
    if level == "ipd":
        outcomes = tuple(
            dataclasses.replace(o, instrument="other", scale_min=-1000.0, scale_max=1000.0) for o in outcomes
        )
    follow_up = tuple(float(t) for t in follow_up)
    base = sim.default_truth(
        outcomes=outcomes,
        outcome_corr=exchangeable_correlation(len(outcomes), outcome_corr),
        follow_up=follow_up,
        change_reference=np.array([[-0.8 * o.sd for o in outcomes]] * len(follow_up)),
        n_per_arm=(n, n),
    )
    margins = np.array([[o.margin for o in outcomes]] * len(follow_up))
    settings = SamplerSettings(
        name="nutpie", chains=chains, draws=draws, tune=tune, target_accept=TARGET_ACCEPT, seed=0
    )
    work = tempfile.TemporaryDirectory()
    root = Path(work.name)
    template = sim.write_study(
        root / "template", base, sim.simulate_patients(base, seed=seed), levels=[level], seed=seed
    )
    model, _ = model_for(template, spec, PRIOR_SET, prior_sampling=True)
    prior, rejected = None, 0
    if truth_kind == "prior":
        # truths from the prior restricted to possible trials (mean change within the scale), counted
        width = np.array([o.scale_max - o.scale_min for o in outcomes])
        draws_all = draw_truths_from_prior(model, 3 * trials, seed=seed)
        keep, rejected = first_within_scale(draws_all["change_natural"], width, trials)
        prior = {k: v[keep] for k, v in draws_all.items()}
    fitter = None
    rows = []
    lo_q, hi_q = (1 - prob) / 2, 1 - (1 - prob) / 2
    first, stop = trial_range if trial_range is not None else (0, trials)
    if not 0 <= first < stop <= trials:
        raise ValueError(f"trial range {first}:{stop} is not within the {trials} trials planned")
    start = time.perf_counter()
    try:
        for k in range(first, stop):
            if truth_kind == "prior":
                truth = dataclasses.replace(
                    base, change_reference=prior["change_natural"][k, 0], delta=prior["delta_natural"][k]
                )
            elif truth_kind == "zero":
                truth = dataclasses.replace(base, delta=np.zeros_like(margins))
            elif truth_kind == "margin":
                truth = dataclasses.replace(base, delta=margins.copy())
            else:
                raise ValueError(truth_kind)
            s = seed + 1 + k
            folder = sim.write_study(
                root / f"rep{k}", truth, sim.simulate_patients(truth, seed=s), levels=[level], seed=s
            )
            m, inputs = model_for(folder, spec, PRIOR_SET)
            if fitter is None:
                fitter = CompiledModel(m, settings)
            idata = fitter.fit(m, seed=s)
            d = idata.posterior["delta_natural"]
            lower = d.quantile(lo_q, dim=("chain", "draw")).values
            upper = d.quantile(hi_q, dim=("chain", "draw")).values
            p_eq = (np.abs(d) < margins).mean(dim=("chain", "draw")).values
            r_hat = float(np.nanmax(rhat(idata, var_names=["delta"])["delta"].values))
            div = int(idata.sample_stats["diverging"].sum())
            tv = np.asarray(truth.delta)
            for (i, t), (j, o) in itertools.product(
                enumerate(inputs.coords["time"]), enumerate(inputs.coords["outcome"])
            ):
                rows.append(
                    {
                        "trial": k,
                        "time": t,
                        "outcome": o,
                        "truth": float(tv[i, j]),
                        "lower": float(lower[i, j]),
                        "upper": float(upper[i, j]),
                        "covered": bool(lower[i, j] <= tv[i, j] <= upper[i, j]),
                        "prob_equivalence": float(p_eq[i, j]),
                        "equivalent": bool(p_eq[i, j] >= threshold),
                        "max_rhat": r_hat,
                        "divergences": div,
                    }
                )
            if (k + 1) % 25 == 0:
                log(f"  coverage {truth_kind}: {k + 1}/{trials} trials ({time.perf_counter() - start:.0f} s)")
                coverage_summary(rows, out, truth_kind, trials, n, level, prob, start, commit)  # partial results
            # each replicate folder is only needed for its fit
            for f in (root / f"rep{k}").iterdir():
                f.unlink()
            (root / f"rep{k}").rmdir()
    finally:
        work.cleanup()
    summary = coverage_summary(rows, out, truth_kind, trials, n, level, prob, start, commit)
    summary["settings"] = {"chains": chains, "draws": draws, "tune": tune, "target_accept": TARGET_ACCEPT, "seed": seed}
    summary["trial_range"] = [first, stop]
    summary["prior_draws_rejected_impossible_change"] = rejected
    summary["simulation"] = {
        "outcome_corr": outcome_corr,
        "change_score_corr": change_score_correlation(base),
        "follow_up": list(follow_up),
    }
    (out / f"coverage_{truth_kind}.json").write_text(json.dumps(summary, indent=2))
    return summary


def change_score_correlation(truth) -> list[list[float]]:
    """Correlation between outcomes of the patients' change scores (one follow-up) under ``truth``."""
    corr = sim.score_correlation(truth)
    n_o = len(truth.outcomes)
    k = np.hstack([-np.eye(n_o), np.eye(n_o)])  # follow-up minus baseline
    cov = k @ corr[: 2 * n_o, : 2 * n_o] @ k.T
    sd = np.sqrt(np.diag(cov))
    return np.round(cov / np.outer(sd, sd), 4).tolist()


def merge_coverage(parts: Sequence[Path], truth_kind: str, out: Path) -> dict:
    """Join the trial ranges of one coverage run (see ``coverage_run``'s ``trial_range``) into ``out``.

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
    tables = [pd.read_csv(p / f"coverage_{truth_kind}_trials.csv") for p in parts]
    rows = pd.concat(tables, ignore_index=True)
    rows = rows.drop_duplicates()  # a trial fitted twice with the same result is kept once
    conflicting = rows[rows.duplicated(["trial", "time", "outcome"], keep=False)]["trial"]
    if len(conflicting) and len({m["commit"] for m in metas}) > 1:
        # other code (e.g. a reordered but equal graph) gives other Monte Carlo draws: keep the first part's
        rows = rows.drop_duplicates(["trial", "time", "outcome"], keep="first")
    elif len(conflicting):
        raise ValueError(f"trials {sorted(set(conflicting))} were fitted in two parts with different results")
    rows = rows.sort_values(["trial", "time", "outcome"], kind="stable")
    summary = coverage_summary(
        rows.to_dict("records"),
        out,
        truth_kind,
        metas[0]["trials_planned"],
        metas[0]["n_per_arm"],
        metas[0]["level"],
        metas[0]["prob"],
        time.perf_counter(),
        ", ".join(sorted({m["commit"] for m in metas})),
    )
    summary["seconds"] = round(sum(m["seconds"] for m in metas), 1)
    summary["merged_from"] = [str(p) for p in parts]
    for k in ("settings", "prior_draws_rejected_impossible_change", "simulation"):
        found = [m[k] for m in metas if k in m]
        if found:
            summary[k] = found[0]
    (out / f"coverage_{truth_kind}.json").write_text(json.dumps(summary, indent=2))
    return summary


def trial_clustered_interval(trial: pd.Series, covered: pd.Series, level: float = 0.95) -> tuple[float, float]:
    """Normal interval for the pooled coverage, with the trial as the independent unit.

    A trial's cells (times x outcomes) share its patients, so their coverage indicators are
    correlated and the pooled Clopper-Pearson interval is too narrow. Here the standard error is
    that of the mean of the per-trial coverage shares (every trial has the same cells).
    """
    per_trial = covered.astype(float).groupby(trial).mean()
    if len(per_trial) < 2:
        return (0.0, 1.0)
    z = stats.norm.ppf(1 - (1 - level) / 2)
    se = per_trial.std(ddof=1) / np.sqrt(len(per_trial))
    mean = per_trial.mean()
    return float(max(0.0, mean - z * se)), float(min(1.0, mean + z * se))


def coverage_summary(
    rows, out: Path, truth_kind: str, trials: int, n: int, level: str, prob: float, start: float, commit: str
):
    """Coverage and equivalence-declaration rates with Clopper-Pearson intervals; writes the CSV + JSON."""
    from bayes_stenosis.calibration.coverage import binomial_interval

    reps = pd.DataFrame(rows)
    out.mkdir(parents=True, exist_ok=True)
    reps.to_csv(out / f"coverage_{truth_kind}_trials.csv", index=False)
    done = int(reps["trial"].nunique())
    summary = {
        "truth": truth_kind,
        "trials_planned": trials,
        "trials_done": done,
        "n_per_arm": n,
        "level": level,
        "prob": prob,
        "cells": {},
    }
    several_times = reps["time"].nunique() > 1
    for key, sub in reps.groupby(["time", "outcome"] if several_times else "outcome", sort=False):
        o = f"week {key[0]:g} {key[1]}" if several_times else key
        kc, nc = int(sub["covered"].sum()), len(sub)
        ke = int(sub["equivalent"].sum())
        summary["cells"][o] = {
            "coverage": kc / nc,
            "coverage_ci95": binomial_interval(kc, nc),
            "equivalent_declared": ke / nc,
            "equivalent_ci95": binomial_interval(ke, nc),
            "trials": nc,
        }
    kc, nc = int(reps["covered"].sum()), len(reps)
    summary["overall_coverage"] = kc / nc
    summary["overall_coverage_ci95"] = binomial_interval(kc, nc)  # as if the cells were independent
    summary["overall_coverage_ci95_by_trial"] = trial_clustered_interval(reps["trial"], reps["covered"])
    summary["max_rhat"] = float(reps["max_rhat"].max())
    summary["divergent_trials"] = int((reps.groupby("trial")["divergences"].first() > 0).sum())
    summary["seconds"] = round(time.perf_counter() - start, 1)
    summary["commit"] = commit
    (out / f"coverage_{truth_kind}.json").write_text(json.dumps(summary, indent=2))
    return summary


# ---------------------------------------------------------------------------------------------
# Command line: python -m bayes_stenosis.calibration {sbc,coverage}
# ---------------------------------------------------------------------------------------------


class _OneLineErrors(argparse.ArgumentParser):
    """Bad options get one line on stderr and exit code 2, like the rest of the command line."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message}\n")


def main(argv: Sequence[str] | None = None, prog: str = "python -m bayes_stenosis.calibration") -> int:
    """Run ``sbc``, ``coverage``, ``coverage-merge`` or ``plot``; returns the exit code.

    Also reached as ``python -m bayes_stenosis.calibration`` and ``bayes-stenosis validation``.
    """
    parser = _OneLineErrors(prog=prog, description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("sbc", help="simulation-based calibration of each likelihood term")
    p.add_argument("--mode", choices=sorted(MODES), default="quick")
    p.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, from {', '.join(CASES)}")
    p.add_argument("--wrong", action="store_true", help="also run the deliberately wrong likelihood (se_as_sd)")
    p.add_argument("--replicates", type=int, default=None, help="override the mode's replicate count (trial runs)")
    p.add_argument("--seed", type=int, default=20181804)
    p.add_argument("--out", type=Path, default=Path("outputs/validation/sbc"))
    r = sub.add_parser("plot", help="redraw the rank histograms of a finished SBC run folder")
    r.add_argument("folder", type=Path)
    c = sub.add_parser("coverage", help="interval coverage and equivalence decisions over simulated trials")
    c.add_argument("--trials", type=int, default=500)
    c.add_argument("--truths", default="prior,zero,margin")
    c.add_argument("--n", type=int, default=20)
    c.add_argument("--level", default="arm_summary", choices=["arm_summary", "arm_summary_change", "contrast", "ipd"])
    c.add_argument("--times", default="8", help="comma-separated follow-up times (weeks)")
    c.add_argument("--seed", type=int, default=2024)
    c.add_argument("--outcomes", default="ODI,RMDQ", help="ODI and/or RMDQ")
    c.add_argument(
        "--outcome-corr", type=float, default=0.75, help="patients' correlation between outcomes at one visit"
    )
    c.add_argument("--draws", type=int, default=500)
    c.add_argument("--tune", type=int, default=500)
    c.add_argument("--out", type=Path, default=Path("outputs/validation/coverage"))
    c.add_argument(
        "--trial-range", default=None, help="START:STOP, fit only these trials of the run (join with coverage-merge)"
    )
    g = sub.add_parser("coverage-merge", help="join the trial ranges of one coverage run")
    g.add_argument("out", type=Path)
    g.add_argument("parts", type=Path, nargs="+")
    g.add_argument("--truths", default="prior")
    args = parser.parse_args(argv)

    def log(msg):
        print(msg, flush=True)

    if args.command == "plot":
        for path in replot(args.folder):
            log(f"wrote {path}")
        return 0
    if args.command == "sbc":
        names = [s for s in args.cases.split(",") if s]
        unknown = set(names) - set(CASES)
        if unknown:
            parser.error(f"unknown case(s): {', '.join(sorted(unknown))}")
        wrong = (None, "se_as_sd") if args.wrong else (None,)
        results = run_sbc(args.mode, names, args.out, args.seed, wrong=wrong, replicates=args.replicates, log=log)
        correct_ok = all(r.passed for r in results if r.wrong is None)
        log(f"SBC {'passed' if correct_ok else 'FAILED'} for the package model; results in {args.out}")
        return 0 if correct_ok else 1
    if args.command == "coverage-merge":
        for kind in [s for s in args.truths.split(",") if s]:
            summary = merge_coverage(args.parts, kind, args.out)
            log(f"coverage {kind}: {summary['trials_done']} trials merged into {args.out}")
        return 0
    trial_range = None
    if args.trial_range:
        try:
            trial_range = tuple(int(x) for x in args.trial_range.split(":"))
        except ValueError:
            parser.error(f"--trial-range {args.trial_range!r}: expected START:STOP")
    for kind in [s for s in args.truths.split(",") if s]:
        log(f"coverage, truths: {kind}, {args.trials} trials, n = {args.n}/arm, {args.level} ...")
        summary = coverage_run(
            args.trials,
            kind,
            args.out,
            seed=args.seed,
            level=args.level,
            n=args.n,
            draws=args.draws,
            tune=args.tune,
            outcomes=[o for o in args.outcomes.split(",") if o],
            outcome_corr=args.outcome_corr,
            follow_up=[float(t) for t in args.times.split(",") if t],
            trial_range=trial_range,
            log=log,
        )
        log(json.dumps(summary["cells"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
