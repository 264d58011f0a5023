r"""What a synthesis takes from each saved run: the LIKELIHOOD of one contrast, never its posterior.

A run's posterior includes its prior; pooling posteriors under a synthesis prior would count every
run's prior once more (and a synthesis of syntheses would count the studies twice). So each study
enters through ``approximations.json``'s ``likelihood`` block (the normal approximation with the run's
prior divided out), or, where the run's own figures say its normal approximation is poor (the
posterior's Kolmogorov-Smirnov distance or largest quantile error for the cell above the limits; or the
normal division is not available), through its posterior draws reweighted by the prior:

.. math::

    L(\delta) \propto \frac{p(\delta \mid \text{data})}{p(\delta)}, \qquad
    w_s = \frac{1}{p(\delta_s)} \text{ for posterior draws } \delta_s,

represented as a weighted kernel density of the draws (Gaussian kernels of Silverman's bandwidth for
the weighted sample, binned on a fine grid): a mixture of normals, which the engine integrates exactly.
:math:`p(\delta)` is the run's marginal prior of the cell (``approximations.json``'s ``prior``): the
prior set's density, or with outcomes pooled (more than one outcome) its convolution with
:math:`N(0, \tau^2)`, :math:`\tau \sim N^+(0, s_\tau^2)`, by quadrature.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import special, stats

from bayes_stenosis import decisions as dec
from bayes_stenosis.analyses.synthesis.engine import Likelihood, kish_ess
from bayes_stenosis.errors import RunFolderError, SynthesisError
from bayes_stenosis.run import RunFolder, load_run, sha256_file

__all__ = ["QualityLimits", "StudyInput", "cell_prior_logpdf", "read_study", "reweighted_likelihood"]


@dataclass(frozen=True)
class QualityLimits:
    """When a run's normal approximation of a cell is too poor to use (the run's own figures,
    ``approximations.json`` ``marginal_fit``), and the least effective sample size of reweighted draws.

    The defaults are this package's choice [S], recorded in every synthesis: a KS distance of 0.05
    between the draws and their normal, or a quantile error of 0.1 posterior SD at 2.5/50/97.5 %.
    """

    max_ks: float = 0.05
    max_quantile_error_sd: float = 0.1
    min_ess: float = 1000.0

    def record(self) -> dict:
        return {
            "max_ks_distance": self.max_ks,
            "max_quantile_error_sd": self.max_quantile_error_sd,
            "min_effective_draws": self.min_ess,
            "source": "bayes-stenosis choice: limits on the run's own normal-approximation figures (marginal_fit)",
        }


@dataclass
class StudyInput:
    """One study's likelihood of the synthesised contrast, with what it is and where it came from."""

    study: str
    run: Path
    time: float
    outcome: str
    unit: str
    direction: str
    standardising_sd: float
    standardising_sd_source: str
    margin_natural: float
    margin_source: str
    new_arm: str
    reference_arm: str
    simulated: bool
    citation: str
    method: str  # "normal" or "reweighted_draws"
    likelihood_std: Likelihood
    quality: dict
    notes: list[str] = field(default_factory=list)
    hashes: dict = field(default_factory=dict)
    effective_draws: float | None = None

    @property
    def margin_std(self) -> float:
        return self.margin_natural / self.standardising_sd

    def likelihood(self, scale: str) -> Likelihood:
        """The likelihood on the synthesis scale: ``standardized`` or ``natural``."""
        if scale == "standardized":
            return self.likelihood_std
        k = self.standardising_sd
        lik = self.likelihood_std
        return Likelihood(lik.centers * k, lik.variances * k**2, lik.weights)


def _refuse(path: Path, message: str) -> None:
    raise SynthesisError(path, message)


def read_study(
    path: str | Path,
    outcome: str,
    time: float,
    *,
    mode: str = "auto",
    limits: QualityLimits | None = None,
) -> StudyInput:
    """The likelihood of ``delta[time, outcome]`` of one saved run (module docstring).

    Parameters
    ----------
    mode
        ``auto`` (the normal likelihood approximation unless the run's figures say it is poor, then the
        reweighted draws), ``normal`` or ``reweighted``.

    Raises
    ------
    SynthesisError
        One line naming the run: a synthesis folder (its result is a posterior), no such cell, no
        evidence in the cell, no likelihood approximation where one is required, too few effective draws.
    RunFolderError
        Not a complete run folder, or a damaged file.
    """
    limits = limits or QualityLimits()
    run = load_run(path)
    if run.manifest.get("kind") == "synthesis":
        _refuse(
            run.path,
            "a synthesis folder, not a study's run: its pooled result is a POSTERIOR (it includes the synthesis "
            "prior and its studies), so synthesising it again would count them twice; pass the original runs",
        )
    approx = run.read_json("approximations.json")
    try:
        dec.validate_approximation(approx)
    except ValueError as exc:
        raise RunFolderError(run.path / "approximations.json", f"not a valid approximation file: {exc}") from None
    idx = _cell_index(run.path, approx, outcome, time)
    name = approx["names"][idx]
    block = approx["likelihood"]
    if name not in block["names"]:
        _refuse(run.path, f"{name} has no evidence in this run (its posterior is its prior): nothing to synthesise")
    fit = approx["marginal_fit"][idx]
    poor = _poor_normal(fit, limits)
    usable = block["status"] == "ok"
    if mode == "normal" and not usable:
        _refuse(
            run.path,
            f"no likelihood approximation ({block['status']}: {block.get('reason', '')}); "
            "its posterior includes the run's prior and cannot be pooled; use --likelihood reweighted",
        )
    use_draws = mode == "reweighted" or (mode == "auto" and (poor or not usable))
    info = _study_info(run, approx, idx)
    quality = {
        "ks_distance": fit["ks_distance"],
        "max_quantile_error_sd": fit["max_quantile_error_sd"],
        "normal_approximation_poor": bool(poor),
        "likelihood_status": block["status"],
        "likelihood_exact": bool(block["exact"]),
    }
    if use_draws:
        lik, ess = reweighted_likelihood(run, approx, name, idx, limits)
        why = "requested" if mode == "reweighted" else ("normal approximation poor" if poor else block["status"])
        method, notes = "reweighted_draws", [f"posterior draws reweighted by 1/prior ({why}); Kish ESS {ess:.0f}"]
    else:
        j = block["names"].index(name)
        lik = Likelihood.normal(block["mean_std"][j], np.sqrt(block["covariance_std"][j][j]))
        method, notes, ess = "normal", [], None
    # the block's first note is about the normal division's accuracy: not what reweighted draws use
    notes += list(block["notes"][1:] if use_draws else block["notes"])
    return StudyInput(**info, method=method, likelihood_std=lik, quality=quality, notes=notes, effective_draws=ess)


def _poor_normal(fit: dict, limits: QualityLimits) -> bool:
    ks, qe = fit["ks_distance"], fit["max_quantile_error_sd"]
    return ks is None or qe is None or ks > limits.max_ks or qe > limits.max_quantile_error_sd


def _cell_index(path: Path, approx: dict, outcome: str, time: float) -> int:
    for i, cell in enumerate(approx["cells"]):
        if cell["outcome"] == outcome and np.isclose(cell["time"], float(time)):
            return i
    have = ", ".join(f"{c['outcome']}@{c['time']:g}" for c in approx["cells"])
    _refuse(path, f"no contrast for outcome {outcome!r} at time {float(time):g} (the run has {have})")
    raise AssertionError  # unreachable


def _study_info(run: RunFolder, approx: dict, idx: int) -> dict:
    """Identity, units, scale, margin, arms and the input files' hashes of one run's cell."""
    manifest, meta = run.manifest, approx.get("metadata", {})
    outcome = approx["cells"][idx]["outcome"]
    sd = next(s for s in approx["standardising_sds"] if s["outcome"] == outcome)
    arms = manifest.get("arms", {})
    return {
        "study": manifest["study"]["id"],
        "run": run.path,
        "time": float(approx["cells"][idx]["time"]),
        "outcome": outcome,
        "unit": approx["units"][idx],
        "direction": approx["direction"][idx],
        "standardising_sd": float(sd["sd"]),
        "standardising_sd_source": sd["source"],
        "margin_natural": float(approx["margins"][idx]),
        "margin_source": _margin_source(run, outcome),
        "new_arm": arms.get("new", meta.get("new_arm", "")),
        "reference_arm": arms.get("reference", meta.get("reference_arm", "")),
        "simulated": bool(manifest["study"].get("simulated", meta.get("simulated", False))),
        "citation": manifest["study"].get("citation", ""),
        "hashes": {
            "manifest_sha256": sha256_file(run.path / "manifest.json"),
            "approximations_sha256": sha256_file(run.file("approximations.json")),
            "study_sha256": manifest["study"].get("sha256"),
            "spec_sha256": meta.get("spec_sha256"),
            "seed": meta.get("seed"),
            "prior_set": approx["prior"].get("set"),
        },
    }


def _margin_source(run: RunFolder, outcome: str) -> str:
    """The margin's source as the run's copy of study.toml states it ("" when the run has no copy)."""
    if not run.has("inputs/study/study.toml"):
        return ""
    with open(run.file("inputs/study/study.toml"), "rb") as handle:
        doc = tomllib.load(handle)
    return str(doc.get("outcomes", {}).get(outcome, {}).get("margin_source", ""))


def cell_prior_logpdf(prior: dict, n_outcomes: int, x: np.ndarray) -> np.ndarray:
    """Log density of the run's marginal prior of one cell's delta (standardized) at ``x``.

    ``prior`` is ``approximations.json``'s ``prior`` block. One outcome, or no pooling: the prior set's
    normal / Student-t. Pooled outcomes: delta = Delta + tau z, tau ~ HalfNormal(tau_scale), integrated
    over 64 equal-probability tau nodes and 40 Gauss-Hermite nodes in z.
    """
    family = prior.get("family")
    if family == "normal":
        base = stats.norm(prior["mu"], prior["sigma"])
    elif family == "student_t":
        base = stats.t(prior["nu"], prior["mu"], prior["sigma"])
    else:
        raise ValueError(f"the run's prior family {family!r} has no density here")
    x = np.asarray(x, float)
    pooled = prior.get("outcome_pooling") == "partial" and n_outcomes > 1 and prior.get("tau_scale")
    if not pooled:
        return base.logpdf(x)
    n_tau = 64
    tau = stats.halfnorm(scale=prior["tau_scale"]).ppf((np.arange(n_tau) + 0.5) / n_tau)
    if family == "normal":
        var = prior["sigma"] ** 2 + tau**2
        logk = stats.norm.logpdf(x[:, None], prior["mu"], np.sqrt(var)[None, :])
        return special.logsumexp(logk, axis=1) - np.log(n_tau)
    z, wz = np.polynomial.hermite_e.hermegauss(40)
    wz = wz / wz.sum()
    shift = (tau[:, None] * z[None, :]).ravel()
    weight = (np.full(n_tau, 1 / n_tau)[:, None] * wz[None, :]).ravel()
    logk = base.logpdf(x[:, None] - shift[None, :])
    return special.logsumexp(logk, axis=1, b=weight[None, :])


def reweighted_likelihood(run: RunFolder, approx: dict, name: str, idx: int, limits: QualityLimits):
    """The cell's likelihood from its posterior draws reweighted by 1/prior: a weighted Gaussian kernel
    density (Silverman's bandwidth with the Kish effective size), binned to kernels at most a third of
    the bandwidth apart. Returns ``(Likelihood, effective draws)``."""
    cell = approx["cells"][idx]
    draws = pd.read_parquet(run.file("draws_contrasts.parquet"), columns=["time", "outcome", "delta_std"])
    x = draws.loc[(draws["outcome"] == cell["outcome"]) & np.isclose(draws["time"], cell["time"]), "delta_std"]
    x = x.to_numpy(float)
    n_outcomes = len({c["outcome"] for c in approx["cells"]})
    try:
        logw = -cell_prior_logpdf(approx["prior"], n_outcomes, x)
    except (KeyError, TypeError, ValueError) as exc:
        _refuse(run.path, f"{name}: the run's prior has no usable density ({exc}); cannot reweight its draws")
    w = np.exp(logw - logw.max())
    ess = kish_ess(w)
    if ess < limits.min_ess:
        _refuse(
            run.path,
            f"{name}: reweighted draws have {ess:.0f} effective draws (< {limits.min_ess:g}); refit "
            "with more draws or use --likelihood normal",
        )
    return kernel_mixture(x, w, ess), ess


def kernel_mixture(x: np.ndarray, w: np.ndarray, ess: float) -> Likelihood:
    """A weighted Gaussian kernel density of ``x`` as a mixture of normal kernels on a binned grid, with
    the draws shrunk towards their mean by sqrt(1 - h^2 / sd^2) so that the mixture keeps their variance."""
    p = w / w.sum()
    mean = float(np.sum(p * x))
    sd = float(np.sqrt(np.sum(p * (x - mean) ** 2)))
    order = np.argsort(x)
    cdf = np.cumsum(p[order])
    q1, q3 = np.interp([0.25, 0.75], cdf, x[order])
    h = 0.9 * min(sd, (q3 - q1) / 1.34) * ess ** (-0.2)
    # shrink the draws towards their mean so that the kernels' variance does not widen the likelihood
    # (the kernel density then has the weighted draws' mean and variance exactly; West 1993)
    x = mean + (x - mean) * np.sqrt(max(1 - h**2 / sd**2, 0.0))
    step = h / 3
    edges = np.arange(x.min() - step, x.max() + 2 * step, step)
    mass, _ = np.histogram(x, bins=edges, weights=p)
    keep = mass > 0
    centers = ((edges[:-1] + edges[1:]) / 2)[keep]
    return Likelihood(centers, np.full(keep.sum(), h**2), mass[keep])
