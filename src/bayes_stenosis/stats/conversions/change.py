"""The SD of the change from baseline and the baseline-follow-up correlation, each from the other.

Both broadcast over array-likes (a correlation assumption is often swept over a grid).

References
----------
.. [1] Higgins JPT, Thomas J, Chandler J, et al. (eds). *Cochrane Handbook for Systematic Reviews
   of Interventions*, version 6 (2019 onwards), chapter 6, section 6.5.2.8 (imputing SDs of change
   from baseline).
.. [2] Follmann D, Elliott P, Suh I, Cutler J. Variance imputation for overviews of clinical trials
   with continuous response. *J Clin Epidemiol* 1992;45(7):769-773.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["correlation_from_sds", "sd_change"]


def _positive_array(name: str, value: ArrayLike) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    # The negated test also catches NaN (NaN > 0 is False).
    if not np.all(np.isfinite(arr) & (arr > 0)):
        raise ValueError(f"{name} must be finite and > 0 (got {value!r})")
    return arr


def _as_output(arr: np.ndarray) -> float | np.ndarray:
    # Scalars in, float out; arrays in, array out.
    return float(arr) if arr.ndim == 0 else arr


def sd_change(sd_baseline: ArrayLike, sd_followup: ArrayLike, correlation: ArrayLike) -> float | np.ndarray:
    """SD of the change from baseline from the baseline and follow-up SDs and their correlation.

    ``SD_change = sqrt(sb^2 + sf^2 - 2 r sb sf)`` (Cochrane Handbook 6.5.2.8 [1]_; Follmann et
    al. 1992 [2]_).

    Parameters
    ----------
    sd_baseline, sd_followup : float or array_like
        SDs at baseline and follow-up; finite and > 0.
    correlation : float or array_like
        Within-participant correlation between baseline and follow-up, in [-1, 1].

    Returns
    -------
    float or numpy.ndarray
        A float when all inputs are scalars, else an array of the broadcast shape.

    Notes
    -----
    With equal SDs ``s`` the SD of change equals ``s`` at ``r = 0.5``, exceeds it below 0.5 and
    falls short of it above, which is why the assumed correlation matters for change scores.
    """
    sb = _positive_array("sd_baseline", sd_baseline)
    sf = _positive_array("sd_followup", sd_followup)
    r = np.asarray(correlation, dtype=float)
    if not np.all((r >= -1) & (r <= 1)):  # also rejects NaN
        raise ValueError(f"correlation must be in [-1, 1] (got {correlation!r})")
    var = sb**2 + sf**2 - 2 * r * sb * sf
    # var >= (sb - sf)^2 >= 0 exactly; clip only the rounding error that could make it -1e-16.
    return _as_output(np.sqrt(np.maximum(var, 0.0)))


def correlation_from_sds(sd_baseline: ArrayLike, sd_followup: ArrayLike, sd_change: ArrayLike) -> float | np.ndarray:
    """Baseline-follow-up correlation implied by the baseline, follow-up and change SDs.

    The inverse of :func:`sd_change`: ``r = (sb^2 + sf^2 - sc^2) / (2 sb sf)`` (Cochrane Handbook
    6.5.2.8 [1]_), used to borrow a correlation from a trial that reports all three SDs.

    Parameters
    ----------
    sd_baseline, sd_followup : float or array_like
        SDs at baseline and follow-up; finite and > 0.
    sd_change : float or array_like
        SD of the change from baseline; finite and > 0.

    Returns
    -------
    float or numpy.ndarray
        A float when all inputs are scalars, else an array of the broadcast shape.

    Raises
    ------
    ValueError
        If an SD is not finite and positive, or the three SDs imply a correlation outside
        [-1, 1] (they cannot come from one set of data, e.g. because one is misreported).
    """
    sb = _positive_array("sd_baseline", sd_baseline)
    sf = _positive_array("sd_followup", sd_followup)
    sc = _positive_array("sd_change", sd_change)
    r = (sb**2 + sf**2 - sc**2) / (2 * sb * sf)
    if not np.all((r >= -1) & (r <= 1)):
        raise ValueError(
            f"sd_baseline={sd_baseline!r}, sd_followup={sd_followup!r} and sd_change={sd_change!r} "
            f"imply a correlation outside [-1, 1] (got {_as_output(r)!r})"
        )
    return _as_output(r)
