"""The grid of a sensitivity sweep: its fits (:class:`FitConfig`), the reference fit and the margin sets.

The grid is the spec's ``[sensitivity]`` table, so it changes without code. A fit's label names only
the axes that differ from the spec, and its seed comes from the run seed and that label: the same fit
gets the same draws whatever else the grid holds.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from bayes_stenosis.errors import InputError
from bayes_stenosis.spec import ModelSpec
from bayes_stenosis.study import Study

__all__ = ["FitConfig", "grid", "margin_sets", "spec_for_correlation", "threshold_assumptions"]


@dataclass(frozen=True)
class FitConfig:
    """One fit of the grid: a prior set, a correlation assumption, an outcome pooling and, for threshold
    statements, the test assumed, the follow-up / baseline SD ratio and the share of patients analysed
    (``"spec"``: the spec's own choice)."""

    prior_set: str
    correlation: str | float  # "uncertain" or a fixed value
    pooling: str | float = "spec"  # "spec" (the spec's [hierarchy]), "none", or a tau scale (SMD)
    between_test: str = "spec"  # "spec", "change", "follow_up" or "ancova"
    followup_sd_ratio: str | float = "spec"  # "spec" ([scale]'s prior) or a fixed ratio
    analysed_fraction: str | float = "spec"  # "spec" or a share of the randomised n

    @property
    def correlation_label(self) -> str:
        return "uncertain" if self.correlation == "uncertain" else f"fixed {float(self.correlation):g}"

    @property
    def pooling_label(self) -> str:
        if self.pooling in ("spec", "none"):
            return str(self.pooling)
        return f"tau scale {float(self.pooling):g}"

    @property
    def label(self) -> str:
        # axes at the spec's value stay out of the label, so a fit keeps its label (and its seed)
        # whatever other axes the grid has
        parts = [f"{self.prior_set} | rho {self.correlation_label}"]
        if self.pooling != "spec":
            parts.append(f"pooling {self.pooling_label}")
        if self.between_test != "spec":
            parts.append(f"test {self.between_test}")
        if self.followup_sd_ratio != "spec":
            parts.append(f"SD ratio {float(self.followup_sd_ratio):g}")
        if self.analysed_fraction != "spec":
            parts.append(f"analysed {float(self.analysed_fraction):g}")
        return " | ".join(parts)

    def seed(self, run_seed: int) -> int:
        """A seed for this fit from the run seed and the configuration's name: the same fit gets
        the same draws whatever else is in the grid."""
        ss = np.random.SeedSequence([int(run_seed), zlib.crc32(self.label.encode())])
        return int(ss.generate_state(1)[0])

    def spec(self, spec: ModelSpec) -> ModelSpec:
        """``spec`` with this configuration's correlation, outcome pooling and threshold assumptions."""
        out = spec_for_correlation(spec, self.correlation)
        update = {}
        if self.pooling != "spec":
            change = (
                {"outcome_pooling": "none"}
                if self.pooling == "none"
                else {"outcome_pooling": "partial", "tau_scale": float(self.pooling)}
            )
            update["hierarchy"] = type(spec.hierarchy).model_validate(spec.hierarchy.model_dump() | change)
        thresholds = {}
        if self.between_test != "spec":
            thresholds["between_test"] = self.between_test
        if self.analysed_fraction != "spec":
            thresholds["analysed_fraction"] = float(self.analysed_fraction)
        if thresholds:
            update["thresholds"] = type(spec.thresholds).model_validate(spec.thresholds.model_dump() | thresholds)
        if self.followup_sd_ratio != "spec":
            fixed = {"followup_sd_ratio_median": float(self.followup_sd_ratio), "followup_sd_ratio_log_sd": 0.0}
            update["scale"] = type(spec.scale).model_validate(spec.scale.model_dump() | fixed)
        return out.model_copy(update=update)


def threshold_assumptions(spec: ModelSpec, has_thresholds: bool = True) -> dict[str, str]:
    """A fit's assumptions behind threshold statements, in words (three columns of the tables;
    empty for a study without statements)."""
    if not has_thresholds:
        return {"between_test": "", "followup_sd_ratio": "", "analysed_fraction": ""}
    ratio = (
        f"{spec.scale.followup_sd_ratio_median:g} (fixed)"
        if spec.scale.followup_sd_ratio_log_sd == 0
        else f"LogNormal(log {spec.scale.followup_sd_ratio_median:g}, {spec.scale.followup_sd_ratio_log_sd:g})"
    )
    return {
        "between_test": spec.thresholds.between_test,
        "followup_sd_ratio": ratio,
        "analysed_fraction": f"{spec.thresholds.analysed_fraction:g}",
    }


def grid(spec: ModelSpec, uses_rho: bool, uses_thresholds: bool = False) -> tuple[list[FitConfig], FitConfig]:
    """The fits of the sweep, and the reference one.

    Every prior set x every correlation assumption (the spec's pooling); then, one axis at a time at
    the reference correlation (a full cross would multiply the fits without asking a new question):
    every prior set that follows the spec's pooling x every alternative pooling; and, when the study
    has threshold statements, every prior set x every alternative test assumed, follow-up / baseline
    SD ratio and share analysed.
    """
    sens = spec.sensitivity
    correlations = list(sens.correlations) if uses_rho else ["uncertain"]
    reference = FitConfig(
        spec.prior.default if spec.prior.default in sens.prior_sets else sens.prior_sets[0],
        "uncertain" if "uncertain" in correlations else correlations[0],
    )
    configs = [FitConfig(p, c) for p in sens.prior_sets for c in correlations]
    for pooling in sens.outcome_pooling:
        for p in sens.prior_sets:
            if pooling != "spec" and spec.prior_sets[p].outcome_pooling == "spec":
                configs.append(FitConfig(p, reference.correlation, pooling))
    if uses_thresholds:
        axes = (
            ("between_test", [t for t in sens.between_tests if t not in ("spec", spec.thresholds.between_test)]),
            ("followup_sd_ratio", [r for r in sens.followup_sd_ratios if r != "spec"]),
            ("analysed_fraction", [f for f in sens.analysed_fractions if f != "spec"]),
        )
        for axis, values in axes:
            for value in values:
                configs += [FitConfig(p, reference.correlation, **{axis: value}) for p in sens.prior_sets]
    return configs, reference


def margin_sets(study: Study, spec: ModelSpec) -> dict[str, dict[str, tuple[float, str]]]:
    """``margin set -> outcome -> (margin in natural units, where it comes from)``.

    ``"study"`` holds the study's own margins; each spec margin set rescales its per-instrument value
    from the instrument's reference range to the outcome's scale width. An outcome whose instrument
    the set does not list keeps the study margin (and says so).
    """
    sens = spec.sensitivity
    out: dict[str, dict[str, tuple[float, str]]] = {"study": {}}
    for o in study.outcomes:
        m = study.outcome(o).margin
        if m is None:
            raise InputError(study.folder / "study.toml", f"outcome {o} has no margin", field=f"outcomes.{o}.margin")
        out["study"][o] = (float(m), "study.toml: " + study.outcome(o).margin_source)
    for name, ms in sens.margin_sets.items():
        out[name] = {}
        for o in study.outcomes:
            oc = study.outcome(o)
            if oc.instrument in ms.margins:
                width = oc.scale_max - oc.scale_min
                value = ms.margins[oc.instrument] * width / sens.instrument_range[oc.instrument]
                out[name][o] = (
                    float(value),
                    f"{ms.description}: {oc.instrument} {ms.margins[oc.instrument]:g} of "
                    f"{sens.instrument_range[oc.instrument]:g}, on a scale of width {width:g}",
                )
            else:
                out[name][o] = (out["study"][o][0], f"no {name} value for {oc.instrument}: study margin kept")
    return out


def spec_for_correlation(spec: ModelSpec, correlation) -> ModelSpec:
    """The spec with the baseline-follow-up correlation fixed (or left to its Beta priors)."""
    fixed = None if correlation == "uncertain" else float(correlation)
    corr = type(spec.correlation).model_validate(spec.correlation.model_dump() | {"fixed_baseline_followup": fixed})
    return spec.model_copy(update={"correlation": corr})
