r"""Rank statistics of SBC: the rank of each truth among thinned posterior draws, and its uniformity test.

The rank :math:`r = \#\{l : f(\theta_l) < f(\tilde\theta)\}` over :math:`L` near-independent posterior
draws is uniform on :math:`\{0, \dots, L\}` when the fitted posterior is the true one (Talts et al.
2018). Per scalar quantity, Pearson's chi-square on the ranks in ``bins`` equal bins
(:math:`L + 1` divisible by ``bins``), with a Bonferroni correction over a case's :math:`K`
quantities: the case fails when some :math:`p < \alpha / K`, so a correctly calibrated case fails with
probability at most :math:`\alpha`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import arviz as az
import numpy as np
import pandas as pd
from scipy import stats


def thin_draws(draws: np.ndarray, keep: int) -> np.ndarray:
    """(chain, draw, ...) -> (keep, ...) evenly spaced over the pooled chains."""
    pooled = draws.reshape(-1, *draws.shape[2:])
    idx = np.linspace(0, pooled.shape[0] - 1, keep).round().astype(int)
    return pooled[idx]


def element_labels(name: str, shape: tuple[int, ...], coords: dict[str, list], dims: Sequence[str]) -> list[str]:
    """``name[coord,...]`` for every element of a variable (coordinate values where the dims have them)."""
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
    posterior = idata.posterior
    ess = az.ess(posterior[list(names)], method="bulk")
    rows = []
    for name in names:
        arr = posterior[name]
        thinned = thin_draws(arr.values, keep)
        coords = {d: list(arr.coords[d].values) for d in arr.dims[2:]}
        labels = element_labels(name, arr.shape[2:], coords, arr.dims[2:])
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
    """The ranks of one case (or of its wrong-likelihood variant) and their uniformity tests."""

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
    compiles: int | None = None  # compiled models the refits used (None: not recorded)

    @property
    def threshold(self) -> float:
        """Bonferroni-corrected per-quantity level."""
        return self.alpha / len(self.tests)

    @property
    def passed(self) -> bool:
        return bool((self.tests["p_value"] >= self.threshold).all())

    @property
    def label(self) -> str:
        """File stem of the result's files in a run folder (:func:`run_label`)."""
        return run_label(self.case, self.wrong)

    def text(self) -> str:
        worst = self.tests.loc[self.tests["p_value"].idxmin()]
        label = self.case + (f" [wrong likelihood: {self.wrong}]" if self.wrong else "")
        return (
            f"{label}: {'PASS' if self.passed else 'FAIL'} - {len(self.tests)} quantities, "
            f"{int(self.tests['replicates'].max())} replicates, smallest p = {worst['p_value']:.3g} "
            f"({worst['quantity']}) vs Bonferroni level {self.threshold:.2g}; {self.seconds:.0f} s"
        )


def run_label(case: str, wrong: str | None) -> str:
    """File stem of one case's outputs in a run folder (``<label>_ranks.csv``, ``_tests.csv``, ``_ranks.png``)."""
    return case + (f"_wrong_{wrong}" if wrong else "")
