"""InferenceData a reader can use as it is (``posterior.nc``): no sampler-internal transformed variables,
every dimension named (with its labels where the study gives them), units and long names on the
natural-unit quantities, and the follow-up time with its unit.

Nothing here changes a draw: variables are dropped (the sampler's unconstrained copies), dimensions
renamed and attributes added.
"""

from __future__ import annotations

import re

import arviz as az
import numpy as np
import xarray as xr

from bayes_stenosis.model import ModelInputs, threshold_design
from bayes_stenosis.model.terms.threshold import BETWEEN_TESTS
from bayes_stenosis.spec import ModelSpec
from bayes_stenosis.study import Study

#: The prior draws of delta behind the decision table's prior column (``Fit.prior_delta_natural``).
PRIOR_DELTA_FILE = "prior_delta.nc"

#: The sampler's unconstrained copies of bounded variables (``tau_log__``, ``rho_logodds__``, ...).
TRANSFORMED = re.compile(r".+_(log|logodds|interval|lowerbound|upperbound|simplex|circular|ordered)__$")
#: A dimension PyMC named by position (``threshold_chi2_dim_0``).
DEFAULT_DIM = re.compile(r"(?P<var>.+)_dim_(?P<axis>\d+)$")


def cell_labels(time_index: np.ndarray, outcome_index: np.ndarray, inputs: ModelInputs) -> list[str]:
    """``"4|ODI"`` per (time, outcome) index pair."""
    times, outcomes = inputs.coords["time"], inputs.coords["outcome"]
    return [f"{times[t]:g}|{outcomes[o]}" for t, o in zip(time_index, outcome_index, strict=True)]


def arm_summary_dims(inputs: ModelInputs) -> dict[str, tuple[str, list | None]]:
    """Dimension name and labels of each arm-summary variable (one block per arm)."""
    out: dict[str, tuple[str, list | None]] = {}
    arms = inputs.coords["arm"]
    for block in inputs.arm_blocks:
        arm = arms[block.arm_index]
        cells = cell_labels(block.time_index, block.outcome_index, inputs)
        change = ~np.isnan(block.sd_change)
        scores = np.flatnonzero(~change)
        outs = np.unique(block.outcome_index[scores])
        groups = {
            f"{arm}_cell": (["mean_change_{a}", "obs_mean_change_{a}", "n_{a}"], cells),
            f"{arm}_change_sd_cell": (
                ["sd_change_{a}", "z_sd_change_{a}", "obs_sd_change_{a}", "sd_change_{a}_sq"],
                [c for c, k in zip(cells, change, strict=True) if k],
            ),
            f"{arm}_baseline_sd_outcome": (
                ["sd_baseline_{a}", "z_sd_baseline_{a}", "obs_sd_baseline_{a}", "sd_baseline_{a}_sq", "n_baseline_{a}"],
                [inputs.coords["outcome"][o] for o in outs],
            ),
            f"{arm}_followup_sd_cell": (
                ["sd_followup_{a}", "z_sd_followup_{a}", "obs_sd_followup_{a}", "sd_followup_{a}_sq"],
                [cells[i] for i in scores],
            ),
        }
        for dim, (names, labels) in groups.items():
            for name in names:
                out[name.format(a=arm)] = (dim, labels)
    return out


def named_dims(inputs: ModelInputs, spec: ModelSpec) -> dict[str, tuple[tuple[str, list | None], ...]]:
    """Per variable whose dimensions PyMC named by position: the name and labels of each dimension."""
    dims: dict[str, tuple[tuple[str, list | None], ...]] = {}
    design = threshold_design(inputs, spec)
    if len(design):
        rows = [int(r) for r in design["row"]]
        between = design[design["comparison"] == "between"]
        finite = between[np.isfinite(between["df"].to_numpy(dtype=float))]
        row = ("threshold_row", rows)
        for name in ("threshold_se_factor", "threshold_crit", "threshold_kind"):
            dims[name] = (row,)
        for name in ("threshold_nodes", "threshold_log_weights"):
            dims[name] = (row, ("quadrature_node", None))
        dims["threshold_between_test"] = (("between_test", list(BETWEEN_TESTS)),)
        dims["threshold_latent"] = (("threshold_between_row", [int(r) for r in between["row"]]),)
        chi2 = ("threshold_chi2_row", [int(r) for r in finite["row"]])
        dims["threshold_chi2"] = dims["threshold_chi2_df"] = (chi2,)
    for name, (dim, labels) in arm_summary_dims(inputs).items():
        dims[name] = ((dim, labels),)
    dims["ipd_baseline_{p}"] = (("ipd_patient_{p}", None), ("ipd_cell_{p}", None))
    dims["ipd_arm_{p}"] = (("ipd_patient_{p}", None),)
    return dims


def rename_dims(ds: xr.Dataset, dims: dict[str, tuple[tuple[str, list | None], ...]]) -> xr.Dataset:
    """Rename every ``<var>_dim_<i>`` of ``ds``: to the name :func:`named_dims` gives (with its labels
    when their number matches), or, for a variable it does not know, to ``<var>_index`` (one axis) /
    ``<var>_axis<i>``: a position, but a name that says whose. Variable by variable, since several
    variables' positional dims become one named dim (``threshold_row``)."""
    if not any(DEFAULT_DIM.fullmatch(str(d)) for d in ds.dims):
        return ds
    labels: dict[str, list] = {}
    variables = {}
    for name, da in ds.data_vars.items():
        mapping = {}
        for dim in da.dims:
            match = DEFAULT_DIM.fullmatch(str(dim))
            if match is None:
                continue
            var, axis = match["var"], int(match["axis"])
            known = dims.get(var) or dims.get(pattern_key(var), ())
            if axis < len(known):
                new, values = known[axis]
                new = new.format(**pattern_groups(var))
                if values is not None and len(values) == da.sizes[dim]:
                    labels[new] = values
            else:
                positional = [d for d in da.dims if DEFAULT_DIM.fullmatch(str(d))]
                new = f"{var}_index" if len(positional) == 1 else f"{var}_axis{axis}"
            mapping[dim] = new
        # the positional dims' coordinates are 0..n-1: replaced by labels, or left out
        variables[name] = da.drop_vars([d for d in mapping if d in da.coords]).rename(mapping)
    out = xr.Dataset(variables, attrs=ds.attrs)
    return out.assign_coords({k: v for k, v in labels.items() if k in out.dims and k not in out.coords})


#: Patient-level data containers named per missingness pattern (``ipd_baseline_<pattern>``).
IPD_PATTERNS = {
    re.compile(r"ipd_baseline_(?P<p>.+)"): "ipd_baseline_{p}",
    re.compile(r"ipd_arm_(?P<p>.+)"): "ipd_arm_{p}",
}


def pattern_key(var: str) -> str:
    """The key of a per-pattern variable in :func:`named_dims` (``ipd_baseline_{p}``), else ``var``."""
    for regex, key in IPD_PATTERNS.items():
        if regex.fullmatch(var):
            return key
    return var


def pattern_groups(var: str) -> dict[str, str]:
    for regex in IPD_PATTERNS:
        match = regex.fullmatch(var)
        if match:
            return match.groupdict()
    return {}


#: Long name and unit of the model's other parameters and derived quantities (names as in the model).
UNITLESS = "1"
STANDARDIZED = "standardized units (natural units / coordinate outcome_standardising_sd)"
PARAMETER_ATTRS = {
    "tau": ("SD of each outcome's treatment difference around the time point's shared one (pooling)", STANDARDIZED),
    "sigma_change": ("SD of the reference arm's mean change across cells around its time point's mean", STANDARDIZED),
    "theta_ref": ("mean change from baseline in the reference arm, standardized", STANDARDIZED),
    "rho": ("correlation of baseline and follow-up scores, per outcome", UNITLESS),
    "r_time": ("correlation of a trial's estimates between follow-up times", UNITLESS),
    "r_outcome": ("correlation of a trial's estimates between outcomes", UNITLESS),
    "r_time_unit": ("r_time as a share of its cap (spec correlation.max_error_correlation)", UNITLESS),
    "r_outcome_unit": ("r_outcome as a share of its cap (spec correlation.max_error_correlation)", UNITLESS),
    "trial_sd_ratio": ("the trial's baseline SD over the cited reference SD, per outcome", UNITLESS),
    "followup_sd_ratio": ("follow-up SD over baseline SD, per outcome", UNITLESS),
    "change_sd_ratio": ("SD of change over the reference SD, per outcome", UNITLESS),
    "between_sd_ratio": ("SD behind the between-arm test (the test assumed) over the reference SD", UNITLESS),
    "threshold_noncentrality": ("noncentrality of each reported statement's test statistic", UNITLESS),
    "threshold_log_prob": ("log probability of each reported statement on its own", "log probability"),
    "threshold_arm_noncentrality": ("noncentrality of each arm's within-arm test, per cell", UNITLESS),
    "threshold_cell_corr": ("correlation of the cells' test statistics", UNITLESS),
    "threshold_between_corr": ("correlation of the between-arm statements' test statistics", UNITLESS),
    "threshold_joint_raw": ("whitened latent test statistics of the joint statement term", UNITLESS),
    "threshold_latent": ("latent test statistics of the between-arm statements", UNITLESS),
    "threshold_joint_chi2": ("chi-square variable of each arm's sample SD (joint statement term)", UNITLESS),
    "threshold_chi2": ("chi-square variable of each between-arm test's sample SD", UNITLESS),
    "threshold_event": ("reported statement holds (1) or not (0)", UNITLESS),
    "obs_contrast": ("reported between-arm difference (new minus reference)", "natural units of the row's outcome"),
}
#: True SDs behind an arm's reported SDs (arm-summary term): ``sd_<kind>_<arm>``.
ARM_SD = re.compile(r"sd_(?P<kind>change|baseline|followup)_(?P<arm>.+)")
#: An arm's reported summaries (arm-summary term): ``obs_mean_change_<arm>``, ``obs_sd_<kind>_<arm>``.
ARM_OBSERVED = re.compile(r"obs_(?:mean_change_(?P<mean>.+)|sd_(?P<kind>change|baseline|followup)_(?P<arm>.+))")
#: Standard-normal innovations of the non-centred parameterisation (``z_delta``: the deviation of delta).
INNOVATION = re.compile(r"z_(?P<of>.+)")


def annotate(ds: xr.Dataset, study: Study, inputs: ModelInputs) -> xr.Dataset:
    """Units and long names of the natural-unit and standardized quantities and of the other parameters
    (:data:`PARAMETER_ATTRS`, ``z_*`` innovations; ``1``: unitless); the time
    coordinate's unit; each outcome's unit and standardising SD as coordinates along ``outcome``."""
    contrast = f"{study.new_arm} minus {study.reference_arm}"
    natural = "natural units of each outcome (coordinate outcome_unit)"
    smd = STANDARDIZED
    attrs = {
        "delta_natural": (f"treatment difference in change from baseline, {contrast}", natural),
        "change_natural": ("change from baseline (follow-up minus baseline) per arm", natural),
        "delta": (f"treatment difference in change from baseline, {contrast}, standardized", smd),
        "change": ("change from baseline per arm, standardized", smd),
        "Delta": ("treatment difference per follow-up time shared by the outcomes, standardized", smd),
        "mu_change": ("mean change in the reference arm per follow-up time, standardized", smd),
    }
    attrs |= {k: v for k, v in PARAMETER_ATTRS.items() if k not in attrs}
    for name in ds.data_vars:
        innovation, arm_sd = INNOVATION.fullmatch(str(name)), ARM_SD.fullmatch(str(name))
        if name in attrs:
            long_name, units = attrs[name]
        elif arm_sd:
            long_name, units = f"true SD of {arm_sd['kind']} scores in arm {arm_sd['arm']}, per cell", STANDARDIZED
        elif observed := ARM_OBSERVED.fullmatch(str(name)):
            if observed["mean"]:
                long_name, units = f"reported mean change from baseline in arm {observed['mean']}", STANDARDIZED
            else:
                long_name = f"reported squared SD of {observed['kind']} scores in arm {observed['arm']}"
                units = f"squared {STANDARDIZED}"
        elif innovation:
            long_name, units = f"standard-normal innovation of {innovation['of']} (non-centred parameterisation)", "1"
        else:
            continue
        ds[name].attrs.update(long_name=long_name, units=units)
    if "time" in ds.coords:
        ds["time"].attrs.update(units=study.meta.times.unit, long_name="follow-up time since baseline")
    if "outcome" in ds.coords:
        outcomes = [str(o) for o in ds["outcome"].values]
        scale = dict(zip(inputs.coords["outcome"], np.asarray(inputs.scale, dtype=float), strict=True))
        ds = ds.assign_coords(
            outcome_unit=("outcome", [study.outcome(o).unit for o in outcomes]),
            outcome_standardising_sd=("outcome", [scale[o] for o in outcomes]),
        )
    return ds


def tidy_inference_data(idata: az.InferenceData, study: Study, inputs: ModelInputs, spec: ModelSpec) -> None:
    """Make ``idata`` readable in place: drop the transformed variables, name every dimension, add units.

    Every group is treated alike (posterior, prior, predictive, constant data); no draw changes.
    """
    dims = named_dims(inputs, spec)
    for group in idata.groups():
        ds = getattr(idata, group)
        dropped = [v for v in ds.data_vars if TRANSFORMED.fullmatch(str(v))]
        ds = ds.drop_vars(dropped)
        unused = [d for d in ds.dims if not any(d in ds[v].dims for v in ds.data_vars)]
        ds = ds.drop_dims(unused)
        ds = annotate(rename_dims(ds, dims), study, inputs)
        setattr(idata, group, ds)


def prior_delta_dataset(fit) -> xr.Dataset:
    """``prior_delta.nc``: the fit's prior draws of delta (natural units; ``settings.prior_draws_decisions``
    of them, the decision table's prior column), with the units and labels of ``posterior.nc``.

    ``fit`` is a :class:`~bayes_stenosis.run.Fit` (not imported here: the fit module imports this one).
    """
    draws = fit.prior_delta_natural.rename("delta_natural")
    ds = xr.Dataset({"delta_natural": draws.drop_vars([c for c in draws.coords if c not in draws.dims])})
    ds = annotate(ds, fit.study, fit.inputs)
    ds.attrs.update(
        description=f"prior draws of delta under prior set '{fit.prior_set}' ({fit.prior.text()})",
        seed=int(fit.settings.seeds()["prior_decisions"]),
    )
    return ds
