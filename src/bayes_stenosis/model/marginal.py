r"""The outcome deviations of the change integrated out analytically where all their evidence is Gaussian
(arm summaries only, or patient data only); theta and delta drawn from their exact conditional normal."""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from bayes_stenosis.model.inputs import ModelInputs
from bayes_stenosis.model.terms.arm_summary import arm_block_error_cov
from bayes_stenosis.spec import ModelSpec


def _symmetric(matrix):
    return (matrix + matrix.T) / 2


def add_marginal_arm_summary_terms(
    inputs: ModelInputs, spec: ModelSpec, mu_change, Delta_cells, sigma_change, tau, rho, R_time, R_out
):
    r"""Arm summaries with the outcome deviations of :math:`\theta_{ref}` and :math:`\delta` integrated out.

    Write the deviations as :math:`x = (z^\theta, z^\delta) \sim N(0, I)` (one pair per cell). Every
    observed mean change is linear in them: :math:`y = b + A x + e`, with
    :math:`b_k = \mu_{t_k} + [a_k = new]\,\Delta_{t_k}`, :math:`A = [\sigma_\theta M^\theta,\ \tau M^\delta]`
    (:math:`M` selects the cell, :math:`M^\delta` only in the new arm) and :math:`e \sim N(0, \Sigma)`,
    :math:`\Sigma` block-diagonal over arms (:func:`arm_block_error_cov`). So exactly

    .. math::

        y \sim MVN(b,\ A A^T + \Sigma), \qquad
        x \mid y \sim N(P^{-1} A^T \Sigma^{-1} (y - b),\ P^{-1}), \quad P = I + A^T \Sigma^{-1} A .

    The likelihood is written per arm as :math:`p(y_{ref})\,p(y_{new} \mid y_{ref})` (same observed
    nodes as the conditional form), and :math:`x = P^{-1} A^T \Sigma^{-1}(y - b) + L_P^{-T} \varepsilon`
    with :math:`\varepsilon \sim N(0, I)` (``z_latent``) independent of the data: the sampler sees
    neither the funnel between :math:`\sigma_\theta` / :math:`\tau` and the deviations nor their
    posterior correlations, and :math:`\theta`, :math:`\delta` are exact posterior draws. In forward
    (prior predictive) sampling :math:`y` is the simulated replicate, so :math:`x` is then a draw
    from its prior, as it must be.

    Returns
    -------
    theta_ref, delta
        (time, outcome) tensors.
    """
    n_time, n_out = len(inputs.coords["time"]), len(inputs.coords["outcome"])
    n_cells = n_time * n_out
    n_dev = n_cells if tau is None else 2 * n_cells  # no delta deviations without outcome pooling
    Delta_full = pt.broadcast_to(Delta_cells, (n_time, n_out))
    parts = []
    for block in sorted(inputs.arm_blocks, key=lambda b: b.arm_index):
        cov, observed = arm_block_error_cov(inputs, spec, block, rho, R_time, R_out)
        cell = block.time_index * n_out + block.outcome_index
        select = np.zeros((len(cell), n_cells))
        select[np.arange(len(cell)), cell] = 1.0
        is_new = float(block.arm_index == 1)
        design_matrix = deviation_design(sigma_change, tau, select, is_new)
        mean = mu_change[block.time_index] + is_new * Delta_full[block.time_index, block.outcome_index]
        parts.append((block, cov, observed, design_matrix, mean))
    observed_rvs = _add_arm_likelihoods(parts, inputs.coords["arm"])
    x = _deviations_given_means(parts, observed_rvs, n_dev)
    return _change_from_deviations(x, mu_change, Delta_cells, sigma_change, tau, n_time, n_out)


def _add_arm_likelihoods(parts: list[tuple], arms: list[str]) -> list:
    r"""The observed mean changes of each arm (``obs_mean_change_<arm>``): the first arm marginally,
    :math:`MVN(b_0, A_0 A_0^T + \Sigma_0)`, the second given the first (chain rule).

    ``parts`` holds per arm (block, error covariance, observed means, design matrix A, mean b).
    """
    first_block, cov0, data0, a0, b0 = parts[0]
    marg0 = _symmetric(a0 @ a0.T + cov0)
    obs0 = pm.MvNormal(f"obs_mean_change_{arms[first_block.arm_index]}", mu=b0, cov=marg0, observed=data0)
    if len(parts) == 1:
        return [obs0]
    block1, cov1, data1, a1, b1 = parts[1]
    chol0 = pt.linalg.cholesky(marg0)
    w = pt.linalg.solve_triangular(chol0, a0 @ a1.T, lower=True)  # L0^-1 C01
    u = pt.linalg.solve_triangular(chol0, obs0 - b0, lower=True)
    cond_mean = b1 + w.T @ u
    cond_cov = _symmetric(a1 @ a1.T + cov1 - w.T @ w)
    obs1 = pm.MvNormal(f"obs_mean_change_{arms[block1.arm_index]}", mu=cond_mean, cov=cond_cov, observed=data1)
    return [obs0, obs1]


def _deviations_given_means(parts: list[tuple], observed_rvs: list, n_dev: int):
    r"""An exact draw of the deviations x given the (observed or replicated) means of every arm:
    :math:`P = I + \sum_a W_a^T W_a`, :math:`s = \sum_a W_a^T L_a^{-1}(y_a - b_a)`, :math:`W_a = L_a^{-1} A_a`
    (:math:`L_a` the Cholesky factor of the arm's error covariance)."""
    precision = pt.eye(n_dev)
    shift = pt.zeros(n_dev)
    for (_, cov, _, a, b), y in zip(parts, observed_rvs, strict=True):
        chol = pt.linalg.cholesky(cov)
        w = pt.linalg.solve_triangular(chol, a, lower=True)
        r = pt.linalg.solve_triangular(chol, y - b, lower=True)
        precision = precision + w.T @ w
        shift = shift + w.T @ r
    x, _, _ = _conditional_deviations(precision, shift, n_dev)
    return x


def deviation_design(sigma_change, tau, select: np.ndarray, is_new: float):
    """Columns of the deviations x = (z_theta, z_delta) in the cells ``select`` picks; without outcome
    pooling (``tau`` None) there are no delta deviations."""
    if tau is None:
        return sigma_change * select
    return pt.concatenate([sigma_change * select, tau * is_new * select], axis=1)


def _conditional_deviations(precision, shift, size: int):
    """x = P^-1 s + L_P^-T eps with eps ~ N(0, I) (``z_latent``): an exact draw of the deviations from
    their conditional normal N(P^-1 s, P^-1). Returns x, eps and the Cholesky factor L_P of P."""
    chol_p = pt.linalg.cholesky(_symmetric(precision))
    post_mean = pt.linalg.solve_triangular(chol_p.T, pt.linalg.solve_triangular(chol_p, shift, lower=True), lower=False)
    eps = pm.Normal("z_latent", 0.0, 1.0, shape=size)
    return post_mean + pt.linalg.solve_triangular(chol_p.T, eps, lower=False), eps, chol_p


def _change_from_deviations(x, mu_change, Delta_cells, sigma_change, tau, n_time: int, n_out: int):
    """theta_ref, delta (time, outcome) from the stacked deviations x = (z_theta, z_delta)."""
    n_cells = n_time * n_out
    theta_ref = mu_change[:, None] + sigma_change * x[:n_cells].reshape((n_time, n_out))
    if tau is None:
        return theta_ref, pt.broadcast_to(Delta_cells, (n_time, n_out))
    return theta_ref, Delta_cells + tau * x[n_cells:].reshape((n_time, n_out))


MARGINAL_IPD_POTENTIAL = "ipd_change_marginal"


def marginal_ipd_change(inputs: ModelInputs, patterns, mu_change, Delta_cells, sigma_change, tau):
    r"""Patient data with the outcome deviations of :math:`\theta_{ref}` and :math:`\delta` integrated out.

    As in :func:`add_marginal_arm_summary_terms`, :math:`x = (z^\theta, z^\delta) \sim N(0, I)` and
    the change is linear in it: :math:`c_a = b_a + A_a x`, :math:`b_{a,t,o} = \mu_t + [a = new]\Delta_t`,
    :math:`A_a = [\sigma_\theta I,\ [a = new]\,\tau I]`. Patient :math:`i` of missingness pattern
    :math:`p` (observed cells :math:`S_p`, cholesky factor :math:`L_p` of :math:`V_{S_p S_p}`) has
    residual :math:`r_i = y_i - \text{offset}_i - b_{a_i}[S_p] \sim N(A_{a_i}[S_p]\,x, V_{S_p S_p})`, so
    given everything else :math:`x` is normal with

    .. math::

        P = I + \sum_{a,p} n_{a,p} W_{a,p}^T W_{a,p}, \quad
        s = \sum_{a,p} W_{a,p}^T L_p^{-1} \sum_{i \in (a,p)} r_i, \quad
        x \mid y \sim N(P^{-1}s, P^{-1}), \qquad W_{a,p} = L_p^{-1} A_a[S_p] .

    Both need only the patterns' sufficient statistics: :math:`n_{a,p}` and
    :math:`\sum_{i \in (a,p)} r_i = A M_{p,a} e_q` (``FollowupPattern.residual_map``, ``stats``).
    The sampler draws :math:`\varepsilon \sim N(0, I)` (``z_latent``) and
    :math:`x = P^{-1}s + L_P^{-T}\varepsilon`. The follow-up likelihood given :math:`x` is then
    added as in the other forms (:func:`~bayes_stenosis.model.terms.ipd.add_ipd_followups`), and the
    potential ``ipd_change_marginal`` :math:`= -\tfrac12 x^Tx + \tfrac12\varepsilon^T\varepsilon - \sum
    \log (L_P)_{kk}` makes the joint density of the sampled :math:`(\phi, \varepsilon)` exactly
    :math:`p(y \mid \phi)\,N(\varepsilon; 0, I)` (:math:`\phi`: every other parameter):
    :math:`p(y \mid x, \phi) N(x; 0, I) = p(y \mid \phi) N(x; P^{-1}s, P^{-1})` and
    :math:`\log N(x; P^{-1}s, P^{-1}) = -\tfrac12\varepsilon^T\varepsilon + \tfrac12\log|P| + c`.
    The sampler sees neither the funnel of :math:`\sigma_\theta`, :math:`\tau` nor the deviations'
    posterior correlations. Forward sampling needs the non-centred model (:func:`prior_sampling_model`).

    Returns
    -------
    theta_ref, delta
        (time, outcome) tensors.
    """
    ipd = inputs.ipd
    n_time, n_out = len(inputs.coords["time"]), len(inputs.coords["outcome"])
    n_cells = n_time * n_out
    n_dev = n_cells if tau is None else 2 * n_cells  # no delta deviations without outcome pooling
    precision = pt.eye(n_dev)
    shift = pt.zeros(n_dev)
    ref = pt.broadcast_to(mu_change[:, None], (n_time, n_out))
    base = pt.stack([ref, ref + Delta_cells])  # (arm, time, outcome)
    for p in patterns:
        model_cell = ipd.time_index[p.time_of] * n_out + ipd.outcome_index[p.outcome_of]
        select = np.zeros((len(p.cells), n_cells))
        select[np.arange(len(p.cells)), model_cell] = 1.0
        b_cells = base[:, ipd.time_index[p.time_of], ipd.outcome_index[p.outcome_of]]  # (arm, cells)
        chol_inv = pt.linalg.solve_triangular(p.chol, pt.eye(len(p.cells)), lower=True)
        for arm in (0, 1):
            # n_{a,p} and sum_i r_i from the pattern's statistics (data containers: swapped data stay consistent)
            count, sums = p.stats[arm, -1, -1], p.stats[arm, :, -1]
            w = chol_inv @ deviation_design(sigma_change, tau, select, float(arm))
            precision = precision + count * (w.T @ w)
            shift = shift + w.T @ (chol_inv @ (p.residual_map(b_cells[arm]) @ sums))
    x, eps, chol_p = _conditional_deviations(precision, shift, n_dev)
    pm.Potential(
        MARGINAL_IPD_POTENTIAL, -0.5 * pt.sum(x**2) + 0.5 * pt.sum(eps**2) - pt.sum(pt.log(pt.diagonal(chol_p)))
    )
    return _change_from_deviations(x, mu_change, Delta_cells, sigma_change, tau, n_time, n_out)
