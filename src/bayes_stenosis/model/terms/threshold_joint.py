r"""Every threshold statement of a study as one event: the joint augmentation and its simulator.

All statements of a study are computed on the same patients, so they are not independent evidence. Per
cell :math:`k` (time, outcome) with statements, arm :math:`a` (``ref``, ``new``) with :math:`n_a` analysed
patients (randomised n x ``analysed_fraction``) and true change SD :math:`\sigma_k` (in reference-SD units:
``change_sd_ratio``):

* :math:`z_{a,k}`: the standardized sampling error of arm :math:`a`'s mean change,
  :math:`z_a = (z_{a,k})_k \sim MVN(0, R)`, :math:`R = R_{time} \otimes R_{outcome}` over the cells (the
  correlation the between-arm term and the arm summaries use), the two arms independent;
* :math:`S_{a,k} = \sqrt{\chi^2_{n_a - 1}/(n_a - 1)}`: the arm's sample SD of change over
  :math:`\sigma_k`, independent of :math:`z` (normal samples). The :math:`S` are taken as independent across
  cells and arms (in truth the SDs of one arm's cells are Wishart-correlated; for df >= 18 they are all
  close to 1), as the between-arm term did;
* within arm :math:`a` (paired t; a normal test has :math:`S = 1`):
  :math:`T_w = u_{a,k} / S_{a,k}` with :math:`u_{a,k} = \lambda_{a,k} + z_{a,k}`,
  :math:`\lambda_{a,k} = \theta_{a,k}\sqrt{n_a}/\sigma_k` (``threshold_arm_noncentrality``);
* between arms (a test on change scores), :math:`T = (\bar y_{new} - \bar y_{ref}) / SE`:
  :math:`T_b = (w_{new} u_{new,k} - w_{ref} u_{ref,k}) / S_{b,k}` with
  :math:`w_a = n_a^{-1/2} / \sqrt{1/n_{new} + 1/n_{ref}}` (:math:`w_{new}^2 + w_{ref}^2 = 1`, so the
  error part is N(0, 1) per cell and MVN(0, R) across cells, and
  :math:`w_{new}\lambda_{new} - w_{ref}\lambda_{ref} = \delta / (\sigma\sqrt{1/n_{new} + 1/n_{ref}})`, the
  between-arm noncentrality); :math:`S_b^2 = \sum_a \frac{n_a - 1}{n_1 + n_2 - 2} S_a^2` (two-sample t:
  exactly :math:`\chi^2_{n_1 + n_2 - 2}/(n_1 + n_2 - 2)`), :math:`S_b^2 = \sum_a w_a^2 S_a^2` (Welch's
  SE over the equal-variance one), or 1 (normal test).

Every single statistic is then the noncentral t of the per-statement likelihood (Welch: its exact
distribution under equal SDs, which the Satterthwaite df of the per-statement form approximates). A
statement is an interval of its numerator: :math:`u_{a,k} \in S_{a,k} K` and
:math:`w_{new} u_{new,k} - w_{ref} u_{ref,k} \in S_{b,k} K`, with :math:`K = (-c, c)` ("P>alpha"),
:math:`(-\infty, -c)` or :math:`(c, \infty)` ("P<alpha" below / above). In the errors :math:`z = u - \lambda`
the statements of a cell cut a convex polygon out of the :math:`(z_{ref}, z_{new})` plane: :math:`z_{ref}`
lies in its projection :math:`(I_{ref} - \lambda_{ref}) \cap (w_{new}(I_{new} - \lambda_{new}) - (J - \lambda_b))
/ w_{ref}` (interval arithmetic), and given :math:`z_{ref}`, :math:`z_{new}` in
:math:`(I_{new} - \lambda_{new}) \cap (J - \lambda_b + w_{ref} z_{ref}) / w_{new}`. The augmentation is
GHK-like: :math:`z_a = L \epsilon_a` with :math:`L L^T = R` and standard-normal :math:`\epsilon`, drawn cell
by cell, each :math:`\epsilon` through an interval transform (:func:`~.intervals.interval_transform`) into its interval
given the earlier ones; the density is :math:`\prod N(\epsilon; 0, 1)` times the transforms' Jacobians, the
:math:`S` from their chi priors. Integrating the latents out gives exactly
:math:`P(\text{all statements} \mid \lambda, R)`; the latents are non-centred in both :math:`\lambda` and
:math:`R` (flagship: ~50 leapfrog steps per draw, against ~190 for the same event sampled in the numerators
:math:`u` with :math:`MVN(u; \lambda, R)`). Only the :math:`S` decide whether a cell's polygon is empty (e.g.
"ref significantly worse, new significantly better, no difference"); there the log-density is
:math:`-\infty` with finite gradients.

Used (:func:`statement_dependence`) when ``thresholds.statement_dependence = "joint"``, the between-arm test
is on change scores and the study has within-arm statements and more than one statement. Otherwise the
per-statement path of :mod:`~bayes_stenosis.model.terms.threshold` is the model: one statement alone (exact
quadrature or its one-latent augmentation), between-arm statements only (their joint augmentation is this
model with the :math:`S_b` drawn directly; for Welch tests with the Satterthwaite df), or tests on follow-up /
ANCOVA scores, whose errors are only
partly correlated with the change errors (follow-up: :math:`(r - \rho)/\sqrt{1 + r^2 - 2\rho r}`; ANCOVA:
:math:`r\sqrt{1 - \rho^2}/\sqrt{1 + r^2 - 2\rho r}`) and are not built jointly here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt

from bayes_stenosis.model.inputs import ModelInputs
from bayes_stenosis.model.kernels.ghk import ghk_log_density_op, joint_statement_log_density_op
from bayes_stenosis.model.terms.intervals import Interval
from bayes_stenosis.spec import ModelSpec

#: The event kind of a statement as a code (``thresholds.kinds_as_data`` fits them as data).
EVENT_KIND_CODES = {"inside": 0, "below": 1, "above": 2}
#: A cell without the statement: its interval is the whole line.
NO_STATEMENT = 3

#: The deterministics the joint statements are simulated from (:func:`simulate_joint_statement_statistics`).
JOINT_STATEMENT_VARIABLES = ("threshold_arm_noncentrality", "threshold_cell_corr")


def statement_dependence(design: pd.DataFrame, spec: ModelSpec) -> dict[str, str] | None:
    """How a study's threshold statements enter the likelihood: ``{"treatment": ..., "reason": ...}``.

    ``"joint"``: one event (this module); ``"independent"``: the per-statement path (within-arm statements
    independent, between-arm ones one event). None for a study without statements.
    """
    if not len(design):
        return None
    within = (design["comparison"] == "within").any()
    if spec.thresholds.statement_dependence == "independent":
        reason = "spec thresholds.statement_dependence = 'independent'"
    elif spec.thresholds.between_test != "change":
        reason = (
            f"between-arm test on {spec.thresholds.between_test} scores: its errors are only partly "
            "correlated with the change errors; the joint augmentation covers change-score tests"
        )
    elif len(design) == 1:
        reason = "one statement: it stands alone (exact per-statement likelihood)"
    elif not within:
        reason = "between-arm statements only: their joint augmentation is already the joint model"
    else:
        return {"treatment": "joint", "reason": "every statement one event (spec thresholds.statement_dependence)"}
    return {"treatment": "independent", "reason": reason}


@dataclass(frozen=True)
class JointDesign:
    """Which cells, arms and SDs the joint augmentation has: build-time layout and data.

    Arm 0 is the reference arm, arm 1 the new arm (``inputs.coords["arm"]``); cells are the distinct
    (time, outcome) of the statements in time-major order. Row positions index the design's rows.
    """

    cells: np.ndarray  # (C, 2): time index, outcome index
    labels: list[str]  # "4|ODI" per cell
    arms: list[str]
    sizes: np.ndarray  # (2,): analysed n per arm
    within_row: np.ndarray  # (2, C): row position of arm a's within-arm statement in cell k, -1 none
    within_t: np.ndarray  # (2, C): that statement is a paired t (divides by S), not a normal test
    between_row: np.ndarray  # (C,): row position of the cell's between-arm statement, -1 none
    pooling: np.ndarray  # (C, 3): S_b^2 = pooling @ (S_ref^2, S_new^2, 1)
    has_sd: np.ndarray  # (2, C): S_{a,k} is a chi variable (some t test of the cell uses it)
    grid: tuple[int, int] | None = None  # the model's (times, outcomes), when known

    @property
    def full_grid(self) -> bool:
        """The cells are every (time, outcome) of the model in time-major order: gathering by cell is a
        reshape (no indexing nodes, and no scatter in the gradient)."""
        return self.grid is not None and len(self.cells) == self.grid[0] * self.grid[1]

    @property
    def weights(self) -> np.ndarray:
        """:math:`w_a = n_a^{-1/2} / \\sqrt{1/n_{ref} + 1/n_{new}}`, shape (2,)."""
        return (1 / np.sqrt(self.sizes)) / np.sqrt((1 / self.sizes).sum())

    @property
    def latent(self) -> np.ndarray:
        """(2, C): arm a has a latent error in cell k (a statement of its own or a between-arm one)."""
        return (self.within_row >= 0) | (self.between_row >= 0)[None, :]

    @property
    def latent_index(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(L,) each: every latent's arm, cell and place among its arm's latent cells (``latent_order``),
        contiguous int64 (numba embeds a strided constant as a dynamic global, which it cannot cache)."""
        order = self.latent_order
        arm_of = np.array([a for a, _ in order], dtype="int64")
        cell_of = np.array([k for _, k in order], dtype="int64")
        index_of = np.array([(arm_of[:pos] == a).sum() for pos, a in enumerate(arm_of)], dtype="int64")
        return arm_of, cell_of, index_of

    @property
    def latent_order(self) -> list[tuple[int, int]]:
        """(arm, cell) of each latent in sampling order: cell by cell, the reference arm first."""
        return [(a, k) for k in range(len(self.labels)) for a in (0, 1) if self.latent[a, k]]


def joint_statement_design(inputs: ModelInputs, spec: ModelSpec, design: pd.DataFrame) -> JointDesign | None:
    """The joint augmentation's layout for a study, or None when the per-statement path is used."""
    treatment = statement_dependence(design, spec)
    if treatment is None or treatment["treatment"] != "joint":
        return None
    arms = list(inputs.coords["arm"])
    sizes = np.array([inputs.arm_sizes[a] * spec.thresholds.analysed_fraction for a in arms], dtype=float)
    tests = inputs.thresholds.set_index("row").loc[design["row"], "test"].to_numpy()
    cell_of_row = list(zip(design["time_index"].astype(int), design["outcome_index"].astype(int), strict=True))
    cells = sorted(set(cell_of_row))
    index = {cell: k for k, cell in enumerate(cells)}
    n_cells = len(cells)
    within_row = np.full((2, n_cells), -1)
    within_t = np.zeros((2, n_cells), dtype=bool)
    between_row = np.full(n_cells, -1)
    pooling = np.zeros((n_cells, 3))
    weights_sq = (1 / sizes) / (1 / sizes).sum()
    for pos, (cell, test, arm) in enumerate(zip(cell_of_row, tests, design["arm_index"].astype(int), strict=True)):
        k = index[cell]
        if arm >= 0:
            within_row[arm, k] = pos
            within_t[arm, k] = test == "paired_t"
            continue
        between_row[k] = pos
        if test == "two_sample_t":
            pooling[k, :2] = (sizes - 1) / (sizes.sum() - 2)
        elif test == "welch_t":
            pooling[k, :2] = weights_sq
        else:
            pooling[k, 2] = 1.0
    times, outcomes = inputs.coords["time"], inputs.coords["outcome"]
    return JointDesign(
        cells=np.array(cells, dtype=int).reshape(n_cells, 2),
        labels=[f"{times[t]:g}|{outcomes[o]}" for t, o in cells],
        arms=arms,
        sizes=sizes,
        within_row=within_row,
        within_t=within_t,
        between_row=between_row,
        pooling=pooling,
        has_sd=within_t | (pooling[:, :2].T > 0),
        grid=(len(times), len(outcomes)),
    )


def event_interval(code, crit, scale) -> Interval:
    r"""The numerator's interval :math:`S K` of a statement of kind ``code`` (EVENT_KIND_CODES or
    NO_STATEMENT: the whole line) with critical value ``crit`` and SD ratio ``scale``: inside
    :math:`(-cS, cS)`, below :math:`(-\infty, -cS)`, above :math:`(cS, \infty)`."""
    code = pt.as_tensor_variable(code)
    bound = crit * scale
    inside = pt.eq(code, EVENT_KIND_CODES["inside"])
    below = pt.eq(code, EVENT_KIND_CODES["below"])
    above = pt.eq(code, EVENT_KIND_CODES["above"])
    none = pt.eq(code, NO_STATEMENT)
    zero = pt.zeros_like(bound)
    lo = pt.switch(pt.or_(below, none), zero, pt.switch(inside, -bound, bound))
    hi = pt.switch(pt.or_(above, none), zero, pt.switch(inside, bound, -bound))
    return Interval(lo, hi, pt.or_(below, none), pt.or_(above, none))


def _cell_codes(joint: JointDesign, rows: np.ndarray, kinds, kind_code):
    """Per cell, the kind code of the statement at row position ``rows[k]`` (-1: NO_STATEMENT)."""
    has = np.flatnonzero(rows >= 0)
    if kind_code is None:
        codes = np.full(len(rows), NO_STATEMENT)
        codes[has] = [EVENT_KIND_CODES[k] for k in kinds[rows[has]]]
        return pt.as_tensor_variable(codes)
    return pt.set_subtensor(pt.full(len(rows), NO_STATEMENT, dtype="int64")[has], kind_code[rows[has]])


def _cell_values(rows: np.ndarray, values, fill: float = 1.0):
    """Per cell, ``values[rows[k]]`` (a row-indexed tensor), ``fill`` where there is no statement."""
    has = np.flatnonzero(rows >= 0)
    return pt.set_subtensor(pt.full(len(rows), fill)[has], values[rows[has]])


def _sample_sds(joint: JointDesign):
    """The chi variables' SD ratios :math:`S_{a,k}` where some t test uses them, a vector in the order of
    ``np.nonzero(joint.has_sd)`` (empty without one), and the pooling of :math:`S_b^2` (a data container)."""
    arm, _ = np.nonzero(joint.has_sd)
    values = pt.zeros(0)
    if len(arm):
        df = pm.Data("threshold_joint_chi2_df", joint.sizes[arm] - 1, dims="threshold_joint_sd")
        chi2 = pm.ChiSquared("threshold_joint_chi2", nu=df, dims="threshold_joint_sd")
        values = pt.sqrt(chi2 / df)
    pooling = pm.Data("threshold_joint_pooling", joint.pooling, dims=("threshold_cell", "sd_pooling"))
    return values, pooling


def cell_sds(joint: JointDesign, values, pooling):
    """:math:`S_{a,k}` as a (2, C) tensor (1 where no t test uses it) and :math:`S_{b,k}`, from
    :func:`_sample_sds`'s values (the graph form, for :func:`cell_error_intervals`)."""
    scale = pt.ones(joint.has_sd.shape)
    arm, cell = np.nonzero(joint.has_sd)
    if len(arm):
        scale = pt.set_subtensor(scale[arm, cell], values)
    s_between = pt.sqrt(pooling[:, 0] * scale[0] ** 2 + pooling[:, 1] * scale[1] ** 2 + pooling[:, 2])
    return scale, s_between


def _add_coords(joint: JointDesign) -> None:
    """The joint term's dimensions: cells, latent errors and chi variables, labelled ``arm|time|outcome``."""
    model = pm.modelcontext(None)
    model.add_coord("threshold_cell", joint.labels)
    model.add_coord("threshold_cell_other", joint.labels)
    model.add_coord("sd_pooling", ["reference_sd_sq", "new_sd_sq", "one"])
    model.add_coord("threshold_joint_latent", [f"{joint.arms[a]}|{joint.labels[k]}" for a, k in joint.latent_order])
    arm, cell = np.nonzero(joint.has_sd)
    model.add_coord(
        "threshold_joint_sd", [f"{joint.arms[a]}|{joint.labels[k]}" for a, k in zip(arm, cell, strict=True)]
    )


def cell_error_intervals(
    joint: JointDesign, design: pd.DataFrame, lam, weight, scale, s_between, crit, kind_code=None
) -> tuple[Interval, Interval, Interval]:
    r"""Per cell, the intervals the statements put on the arms' standardized errors :math:`z`.

    ``lam``: :math:`\lambda_{a,k}`, (2, C); ``weight``: :math:`w_a`; ``scale``: :math:`S_{a,k}`, (2, C);
    ``s_between``: :math:`S_{b,k}`. Returns ``(ref, new, between)``: :math:`z_{ref}` in ``ref``, the
    projection of the cell's polygon
    :math:`(I_{ref} - \lambda_{ref}) \cap (w_{new}(I_{new} - \lambda_{new}) - (J - \lambda_b)) / w_{ref}`;
    :math:`z_{new}` in ``new`` :math:`= I_{new} - \lambda_{new}`; and
    :math:`w_{new} z_{new} - w_{ref} z_{ref}` in ``between`` :math:`= J - \lambda_b`, each a C-vector.
    """
    kinds = design["kind"].to_numpy()
    within = [
        event_interval(
            _cell_codes(joint, joint.within_row[a], kinds, kind_code),
            _cell_values(joint.within_row[a], crit),
            pt.switch(joint.within_t[a], scale[a], 1.0),
        ).shifted(-lam[a])
        for a in (0, 1)
    ]
    lam_between = weight[1] * lam[1] - weight[0] * lam[0]
    between = event_interval(
        _cell_codes(joint, joint.between_row, kinds, kind_code), _cell_values(joint.between_row, crit), s_between
    ).shifted(-lam_between)
    ref = within[0].intersect(within[1].scaled(weight[1]).minus(between).scaled(1 / weight[0]))
    return ref, within[1], between


def whitened_log_density(joint: JointDesign, raw, intervals, weight, corr):
    r"""log-density of the latents: each arm's errors :math:`z_a = L_a \epsilon_a` (:math:`L_a L_a^T` its
    cells' :math:`R`, :math:`\epsilon_a \sim N(0, I)`), drawn cell by cell (GHK): :math:`\epsilon_{ref}`
    in its cell's projection given the earlier cells, then :math:`\epsilon_{new}` given
    :math:`z_{ref}` of the cell. The latents are the standard normal :math:`\epsilon` (non-centred in
    both :math:`\lambda` and :math:`R`); the log-density is their :math:`N(0, 1)` log-densities plus the
    transforms' log-Jacobians (:func:`~.intervals.interval_transform`; and :math:`-\infty` where a cell's polygon is
    empty).

    The recursion is one fused operation with its gradient
    (:class:`~bayes_stenosis.model.kernels.ghk.GHKLogDensity`); the intervals and Cholesky factors are
    its inputs.
    """
    latent = joint.latent
    chol = [
        pt.linalg.cholesky(corr[cells][:, cells]) for cells in (np.flatnonzero(latent[0]), np.flatnonzero(latent[1]))
    ]
    order = joint.latent_order
    arm_of, cell_of, index_of = joint.latent_index
    ends = ("lo", "hi", "lo_inf", "hi_inf")
    lo, hi, lo_inf, hi_inf = (pt.stack([getattr(iv, end) for iv in intervals]) for end in ends)
    value = ghk_log_density_op(raw, chol[0], chol[1], lo, hi, lo_inf, hi_inf, weight, arm_of, cell_of, index_of)[0]
    return value - 0.5 * len(order) * np.log(2 * np.pi)


def joint_log_density(
    joint: JointDesign,
    design: pd.DataFrame,
    raw,
    change,
    sqrt_n,
    change_sd_ratio,
    R_time,
    R_out,
    sd_values,
    pooling,
    weight,
    crit,
    kind_code=None,
):
    r"""log-density of the latents, as :func:`whitened_log_density` of :func:`cell_error_intervals` with the
    noncentralities, correlation and SD ratios of :func:`add_joint_statement_term`, computed by one
    operation with its gradient (:class:`~bayes_stenosis.model.kernels.ghk.JointStatementLogDensity`).

    ``change`` (arm, time, outcome), ``sqrt_n`` (arm), ``change_sd_ratio`` (outcome), ``R_time``, ``R_out``:
    as :func:`add_joint_statement_term`; ``sd_values`` and ``pooling``: :func:`_sample_sds`; ``weight``:
    :math:`w_a`; ``crit`` and ``kind_code``: per design row.
    """
    kinds = design["kind"].to_numpy()
    rows = (joint.within_row[0], joint.within_row[1], joint.between_row)
    codes = pt.stack([_cell_codes(joint, r, kinds, kind_code) for r in rows])
    crit_cells = pt.stack([_cell_values(r, crit) for r in rows])
    sd_arm, sd_cell = np.nonzero(joint.has_sd)
    cells = [joint.cells[:, 0], joint.cells[:, 1], sd_arm, sd_cell, *map(np.flatnonzero, joint.latent)]
    # contiguous: numba embeds a strided constant (a column of joint.cells) as a dynamic global, and code with
    # one cannot be cached on disk
    layout = [*(np.ascontiguousarray(v, dtype="int64") for v in cells), *joint.latent_index]
    floats = (raw, change, sqrt_n, change_sd_ratio, R_time, R_out, sd_values, pooling, crit_cells, weight)
    value = joint_statement_log_density_op(*floats, codes, np.ascontiguousarray(joint.within_t), *layout)[0]
    return value - 0.5 * len(joint.latent_order) * np.log(2 * np.pi)


def add_joint_statement_term(
    joint: JointDesign, design: pd.DataFrame, change, change_sd_ratio, crit, R_time, R_out, kind_code=None
) -> None:
    r"""Every threshold statement of the study as one event, by data augmentation (module docstring).

    Parameters
    ----------
    joint
        :func:`joint_statement_design` of the study.
    design
        Its ``threshold_design`` (rows in order; ``kind`` used when ``kind_code`` is None).
    change
        :math:`\theta`, (arm, time, outcome), standardized.
    change_sd_ratio
        :math:`\sigma` per outcome in reference-SD units.
    crit
        Critical value per design row (a data container).
    R_time, R_out
        Error correlations across times and outcomes.
    kind_code
        Event kind codes per design row as data (``thresholds.kinds_as_data``), or None: constants.
    """
    _add_coords(joint)
    t_idx, o_idx = joint.cells[:, 0], joint.cells[:, 1]
    full_grid = joint.full_grid
    n_cells = len(joint.cells)
    sqrt_n = pm.Data("threshold_joint_sqrt_n", np.sqrt(joint.sizes), dims="arm")
    change_cells = change.reshape((2, n_cells)) if full_grid else change[:, t_idx, o_idx]
    pm.Deterministic(
        "threshold_arm_noncentrality",
        change_cells * sqrt_n[:, None] / change_sd_ratio[o_idx][None, :],
        dims=("arm", "threshold_cell"),
    )
    if full_grid:  # R[(t, o), (t', o')] = R_time[t, t'] R_out[o, o']
        cell_corr = (R_time[:, None, :, None] * R_out[None, :, None, :]).reshape((n_cells, n_cells))
    else:
        cell_corr = R_time[t_idx[:, None], t_idx[None, :]] * R_out[o_idx[:, None], o_idx[None, :]]
    pm.Deterministic("threshold_cell_corr", cell_corr, dims=("threshold_cell", "threshold_cell_other"))
    sd_values, pooling = _sample_sds(joint)
    weight = pm.Data("threshold_joint_arm_weight", joint.weights, dims="arm")
    raw = pm.Flat("threshold_joint_raw", dims="threshold_joint_latent")
    # the operation computes lambda and R itself (the deterministics above are for the trace): their graph
    # and its gradient cost as much per evaluation as the whole rest of the term
    value = joint_log_density(
        joint, design, raw, change, sqrt_n, change_sd_ratio, R_time, R_out, sd_values, pooling, weight, crit, kind_code
    )
    pm.Potential("threshold_joint_likelihood", value)


def simulate_joint_statement_statistics(
    arm_noncentrality: np.ndarray,
    cell_corr: np.ndarray,
    joint: JointDesign,
    design: pd.DataFrame,
    rng: np.random.Generator,
    replicates: int = 1,
) -> np.ndarray:
    r"""The test statistic of every statement, replicated from the joint generative model (module docstring).

    Per draw and replicate: :math:`z_a = L \epsilon_a` (:math:`L L^T = R`) for the reference arm, then the
    new arm; :math:`S_{a,k}` for every (arm, cell), reference arm first; then :math:`T` per design row.

    Parameters
    ----------
    arm_noncentrality
        :math:`\lambda_{a,k}` (``threshold_arm_noncentrality``), shape ``(draws, 2, C)``.
    cell_corr
        :math:`R` over the cells (``threshold_cell_corr``), shape ``(draws, C, C)``.
    joint, design
        :func:`joint_statement_design` and the ``threshold_design`` of the study.

    Returns
    -------
    np.ndarray
        :math:`T`, shape ``(draws, replicates, rows)`` in the design's row order.
    """
    n, _, n_cells = arm_noncentrality.shape
    chol = np.linalg.cholesky(cell_corr)
    eps = rng.standard_normal((2, n, replicates, n_cells))
    u = np.einsum("nij,anrj->anri", chol, eps) + np.moveaxis(arm_noncentrality, 1, 0)[:, :, None, :]
    df = (joint.sizes - 1)[:, None, None, None]
    s = np.sqrt(rng.chisquare(np.broadcast_to(df, (2, n, replicates, n_cells))) / df)
    pooling = joint.pooling
    s_between = np.sqrt(pooling[:, 0] * s[0] ** 2 + pooling[:, 1] * s[1] ** 2 + pooling[:, 2])
    w_ref, w_new = joint.weights
    t_stat = np.empty((n, replicates, len(design)))
    for k in range(n_cells):
        for a in (0, 1):
            pos = joint.within_row[a, k]
            if pos >= 0:
                t_stat[:, :, pos] = u[a, :, :, k] / (s[a, :, :, k] if joint.within_t[a, k] else 1.0)
        pos = joint.between_row[k]
        if pos >= 0:
            t_stat[:, :, pos] = (w_new * u[1, :, :, k] - w_ref * u[0, :, :, k]) / s_between[:, :, k]
    return t_stat
