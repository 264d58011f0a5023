"""Model specifications (``models/*.toml``): a closed schema, loaded and validated with pydantic.

A spec holds everything that changes results and is not data: hyperpriors of the hierarchy, the
correlation priors, the named prior sets for the treatment difference, the decision rule, the
interval convention and the sampler settings. Unknown keys are errors.
"""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from scipy import stats

from bayes_stenosis.errors import InputError, decode_utf8, validation_message
from bayes_stenosis.resources import resolve_spec


class _Closed(BaseModel):
    # strict: a TOML string is never turned into a number or a boolean (draws = "1000" is an error)
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, strict=True)


class BetaPrior(_Closed):
    alpha: float = Field(gt=0)
    beta: float = Field(gt=0)

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)


class Hierarchy(_Closed):
    mu_change_sigma: float = Field(gt=0)
    sigma_change_scale: float = Field(gt=0)
    # "gamma2": Gamma(2, 2 / scale), mean = scale, density 0 at 0 (boundary-avoiding; Chung et al.
    # Psychometrika 2013): with 2-4 outcomes the centred hierarchy otherwise has a funnel at 0.
    sigma_change_prior: Literal["halfnormal", "gamma2", "fixed"] = "gamma2"
    tau_scale: float = Field(gt=0)
    # "partial": delta[t, o] = Delta[t] + tau z[t, o], tau ~ HalfNormal(tau_scale): outcomes of one time
    # share a treatment difference up to tau. "none": delta[t, o] = Delta[t, o], each cell its own draw
    # from the prior set (no pooling across outcomes). A prior set may override it.
    outcome_pooling: Literal["partial", "none"]
    # "marginalised": outcome deviations integrated out analytically where all their evidence is
    # Gaussian (arm summaries only, or patient data only: model.marginalises_change), non-centred
    # elsewhere. "centred" / "noncentred": that form of the reference-arm deviations everywhere
    # (the treatment-difference deviations are always non-centred). Required: it changes the sampler's
    # geometry, so a spec states it.
    change_parameterisation: Literal["centred", "noncentred", "marginalised"]
    # The reference arm's change per cell. "pooled": theta_ref[t, o] = mu_change[t] + sigma_change z[t, o],
    # the SD learnt from how alike the outcomes' changes look; "unpooled": sigma_change fixed at
    # mu_change_sigma, each cell its own draw; "unpooled_with_arm_data": unpooled in a study with arm
    # summaries or patient data (where the data measure each arm's change), pooled otherwise (threshold
    # statements, contrasts). Why: delta is new minus reference, so shrinking the reference arm's change
    # moves delta by as much (model.builder; VALIDATION.md section 8). Required: it moves the answer.
    reference_change: Literal["pooled", "unpooled", "unpooled_with_arm_data"]


class Correlation(_Closed):
    VAS: BetaPrior
    NRS: BetaPrior
    ODI: BetaPrior
    QBPDS: BetaPrior
    RMDQ: BetaPrior
    other: BetaPrior
    time: BetaPrior
    outcome_lkj_eta: float = Field(gt=0)
    # "exchangeable": one correlation r_outcome ~ Beta(outcome) shared by every pair of outcomes;
    # "lkj": a full matrix with an LKJ(outcome_lkj_eta) prior.
    # "independent": no correlation between outcomes' sampling errors (R_outcome = I): a robustness
    # reference only; outcomes measured on the same patients are correlated
    outcome_structure: Literal["exchangeable", "lkj", "independent"] = "exchangeable"
    outcome: BetaPrior = BetaPrior(alpha=6.0, beta=4.0)
    # r_time and r_outcome are max_error_correlation x Beta(...): the sampling errors of two different
    # cells are never perfectly correlated, and near 1 the Kronecker covariance is near-singular
    # (measured: the divergences of the joint threshold term sit at r_time > 0.95).
    max_error_correlation: float = Field(default=1.0, gt=0, le=1)
    # Fixed correlation for sensitivity analyses; None = the Beta priors above.
    fixed_baseline_followup: float | None = Field(default=None, ge=-1, le=1)

    def baseline_followup(self, instrument: str) -> BetaPrior:
        return getattr(self, instrument)


class Scale(_Closed):
    trial_sd_log_ratio_sigma: float = Field(ge=0)
    sd_log_sigma: float = Field(gt=0)
    # Follow-up SD / baseline SD of each outcome where the data do not give both (threshold cells):
    # log r ~ N(log median, log_sd^2); log_sd 0 fixes r at the median (1: follow-up SD = baseline SD).
    followup_sd_ratio_median: float = Field(default=1.0, gt=0)
    followup_sd_ratio_log_sd: float = Field(default=0.0, ge=0)


class Thresholds(_Closed):
    unknown_split: Literal["equal"] = "equal"
    quadrature_nodes: int = Field(default=16, ge=4, le=64)
    # the event kind of each statement (P<alpha / P>alpha, direction) as data, not graph structure:
    # the same probabilities, one compiled model for every replicate of a coverage study
    kinds_as_data: bool = False
    # The test assumed behind a between-arm statement: a t test on change scores ("change"), on
    # follow-up scores ("follow_up"), or an ANCOVA of follow-up on baseline ("ancova"). The
    # estimate's expectation is delta under randomisation in all three; its SD differs: change
    # sqrt(1 + r^2 - 2 rho r), follow-up r, ANCOVA r sqrt(1 - rho^2) (baseline SD units).
    between_test: Literal["change", "follow_up", "ancova"] = "change"
    # Share of the randomised patients analysed in the tests behind the statements (completers);
    # 1 = the reported (randomised) n.
    analysed_fraction: float = Field(default=1.0, gt=0, le=1)
    # "joint": every statement of a study one event (each arm's mean-change errors, the between-arm
    # statistics derived from them, shared SDs: model.terms.threshold_joint); "independent": each
    # within-arm statement its own event, the between-arm ones jointly
    statement_dependence: Literal["joint", "independent"] = "joint"


class PriorChoice(_Closed):
    default: str
    reference_margin: Literal["smallest"] = "smallest"


class FromMargin(_Closed):
    tail_mass: float = Field(gt=0, lt=1)
    two_sided: bool


class PriorSet(_Closed):
    # what the set says, in words, with its source and its prior P(equivalence) per outcome
    description: str = ""
    # "spec": the spec's [hierarchy] outcome_pooling; "none": no pooling across outcomes whatever the
    # spec says (the vague set: a frequentist answer per cell needs independent cells)
    outcome_pooling: Literal["spec", "none"] = "spec"
    family: Literal["student_t", "normal"]
    nu: float | None = Field(default=None, gt=0)
    mu: float | None = None
    sigma: float | None = Field(default=None, gt=0)
    mu_from_margin: Literal["favours_new"] | None = None
    sigma_from_margin: FromMargin | None = None

    @model_validator(mode="after")
    def _complete(self) -> PriorSet:
        if (self.mu is None) == (self.mu_from_margin is None):
            raise ValueError("give exactly one of mu and mu_from_margin")
        if (self.sigma is None) == (self.sigma_from_margin is None):
            raise ValueError("give exactly one of sigma and sigma_from_margin")
        if self.family == "student_t" and self.nu is None:
            raise ValueError("a student_t prior needs nu")
        return self

    def resolve(self, margin_std: float, new_better_sign: float, outcome_pooling: str) -> ResolvedPrior:
        """Concrete location and scale, given the reference standardized margin.

        ``new_better_sign`` is -1 when a negative delta favours the new arm (lower is better);
        ``outcome_pooling`` is the spec's (used unless the set says ``"none"``).
        """
        if self.sigma_from_margin is not None:
            tail = self.sigma_from_margin.tail_mass
            quantile = 1 - tail / 2 if self.sigma_from_margin.two_sided else 1 - tail
            sigma = margin_std / float(stats.norm.ppf(quantile))
        else:
            sigma = float(self.sigma)
        mu = new_better_sign * margin_std if self.mu_from_margin == "favours_new" else float(self.mu)
        pooling = "none" if self.outcome_pooling == "none" else outcome_pooling
        return ResolvedPrior(family=self.family, nu=self.nu, mu=mu, sigma=sigma, outcome_pooling=pooling)


class ResolvedPrior(_Closed):
    family: Literal["student_t", "normal"]
    nu: float | None
    mu: float
    sigma: float
    outcome_pooling: Literal["partial", "none"]

    def text(self) -> str:
        if self.family == "student_t":
            dist = f"Student-t(df={self.nu:g}, mu={self.mu:.4g}, sigma={self.sigma:.4g})"
        else:
            dist = f"Normal(mu={self.mu:.4g}, sigma={self.sigma:.4g})"
        if self.outcome_pooling == "none":
            return f"{dist} per cell (no pooling across outcomes)"
        return f"{dist} per time, outcomes pooled (tau)"


class Decision(_Closed):
    threshold: float = Field(gt=0.5, lt=1)
    interval_kind: Literal["eti", "hdi"]
    interval_prob: float = Field(gt=0, lt=1)
    margin_curve_points: int = Field(ge=3, le=1001)
    margin_curve_max_multiple: float = Field(gt=1)


class Sampler(_Closed):
    name: Literal["nutpie", "pymc"]
    chains: int = Field(ge=1)
    draws: int = Field(ge=1)
    tune: int = Field(ge=0)
    target_accept: float = Field(gt=0, lt=1)
    seed: int = Field(ge=0)


class Diagnostics(_Closed):
    max_rhat: float = Field(gt=1)
    min_ess_bulk: float = Field(gt=0)
    min_ess_tail: float = Field(gt=0)
    max_divergences: int = Field(ge=0)


# ---------------------------------------------------------------------------------------------
# [sensitivity]: the grid of ``bayes-stenosis sensitivity`` (owned by the sensitivity module)
# ---------------------------------------------------------------------------------------------

Instrument = Literal["VAS", "NRS", "ODI", "QBPDS", "RMDQ", "other"]


class MarginSet(_Closed):
    """Alternative margins per instrument, in points of the instrument's reference range
    (``Sensitivity.instrument_range``); an outcome's margin is ``value x its scale width / range``,
    so a VAS margin of 10 on 0-100 is 1.0 on a 0-10 scale."""

    description: str
    margins: dict[Instrument, float]

    @model_validator(mode="after")
    def _positive(self) -> MarginSet:
        bad = {k: v for k, v in self.margins.items() if not v > 0}
        if bad:
            raise ValueError(f"margins must be > 0 (got {bad})")
        return self


class Sensitivity(_Closed):
    """The sensitivity grid: every prior set x every correlation assumption is one fit; every
    margin set is applied to the draws of every fit ("study" = the study's own margins, always
    included)."""

    prior_sets: list[str] = Field(min_length=1)
    # "uncertain" = the Beta priors of [correlation]; a number = rho fixed at that value
    correlations: list[Literal["uncertain"] | float] = Field(min_length=1)
    # outcome pooling of the treatment difference: "spec" (the [hierarchy] choice), "none", or a tau
    # scale (SMD); crossed with the prior sets at the reference correlation
    outcome_pooling: list[Literal["spec", "none"] | float] = ["spec"]
    # threshold statements only, each crossed with the prior sets at the reference correlation: the
    # test assumed behind between-arm statements, the follow-up / baseline SD ratio fixed at a value
    # (instead of [scale]'s prior), the share of randomised patients analysed
    between_tests: list[Literal["spec", "change", "follow_up", "ancova"]] = ["spec"]
    followup_sd_ratios: list[Literal["spec"] | float] = ["spec"]
    analysed_fractions: list[Literal["spec"] | float] = ["spec"]
    instrument_range: dict[Instrument, float]
    margin_sets: dict[str, MarginSet] = {}

    @model_validator(mode="after")
    def _checks(self) -> Sensitivity:
        if len(set(self.prior_sets)) != len(self.prior_sets):
            raise ValueError("prior_sets are listed twice")
        if len(set(map(str, self.correlations))) != len(self.correlations):
            raise ValueError("correlations are listed twice")
        if len(set(map(str, self.outcome_pooling))) != len(self.outcome_pooling):
            raise ValueError("outcome_pooling values are listed twice")
        for t in self.outcome_pooling:
            if t not in ("spec", "none") and not t > 0:
                raise ValueError(f"a tau scale must be > 0 (got {t})")
        for name in ("between_tests", "followup_sd_ratios", "analysed_fractions"):
            values = getattr(self, name)
            if len(set(map(str, values))) != len(values):
                raise ValueError(f"{name} values are listed twice")
        if any(r != "spec" and not r > 0 for r in self.followup_sd_ratios):
            raise ValueError("followup_sd_ratios must be > 0")
        if any(f != "spec" and not 0 < f <= 1 for f in self.analysed_fractions):
            raise ValueError("analysed_fractions must be in (0, 1]")
        for c in self.correlations:
            if c != "uncertain" and not -1 < c < 1:
                raise ValueError(f"a fixed correlation must be in (-1, 1) (got {c})")
        if "study" in self.margin_sets:
            raise ValueError("margin set name 'study' is reserved for the study's own margins")
        for name, ms in self.margin_sets.items():
            missing = set(ms.margins) - set(self.instrument_range)
            if missing:
                raise ValueError(f"margin set {name!r}: no instrument_range for {', '.join(sorted(missing))}")
        if any(not v > 0 for v in self.instrument_range.values()):
            raise ValueError("instrument_range values must be > 0")
        return self


class IPD(_Closed):
    """Priors and options of the patient-level (``ipd``) term, standardized units (``model.terms.ipd``).

    A standardized unit is one pooled baseline SD of the patients. ``baseline_adjustment``: "ancova"
    (follow-up regressed on baseline, slope ``N(slope_mu, slope_sigma)``) or "change" (slope fixed at 1:
    the change-score analysis). ``covariance`` of a patient's follow-up residuals over visit x outcome:
    "unstructured" (MMRM: one covariance matrix, LKJ(eta) correlations and half-normal(residual_sd_scale)
    SDs per cell) or "patient_effects" (V = J (x) Sigma_u + I (x) Sigma_e: a patient effect per outcome
    shared by every visit plus a per-visit residual). ``residual_correlation = "none"`` removes every
    correlation across outcomes (unstructured: one covariance over visits per outcome; patient effects:
    Sigma_e diagonal). Whether the reference arm's change is pooled across outcomes is the hierarchy's
    ``reference_change`` (:class:`Hierarchy`).
    """

    baseline_adjustment: Literal["ancova", "change"] = "ancova"
    covariance: Literal["unstructured", "patient_effects"] = "unstructured"
    residual_correlation: Literal["lkj", "none"] = "lkj"
    # LKJ shape of the unstructured covariance's correlations (1: uniform over correlation matrices)
    covariance_lkj_eta: float = Field(default=1.0, gt=0)
    baseline_mean_sigma: float = Field(default=1.0, gt=0)
    slope_mu: float = 0.5
    slope_sigma: float = Field(default=0.5, gt=0)
    patient_sd_scale: float = Field(default=1.0, gt=0)
    residual_sd_scale: float = Field(default=1.0, gt=0)


class ModelSpec(_Closed):
    schema_version: Literal[1] = 1
    name: str
    description: str
    hierarchy: Hierarchy
    correlation: Correlation
    scale: Scale
    thresholds: Thresholds
    prior: PriorChoice
    prior_sets: dict[str, PriorSet]
    decision: Decision
    sampler: Sampler
    diagnostics: Diagnostics
    # the patient-level term (defaults documented in class IPD and models/default.toml)
    ipd: IPD = IPD()
    # optional: only ``bayes-stenosis sensitivity`` reads it (and refuses a spec without it)
    sensitivity: Sensitivity | None = None

    @model_validator(mode="after")
    def _default_prior_exists(self) -> ModelSpec:
        if self.prior.default not in self.prior_sets:
            raise ValueError(
                f"prior.default {self.prior.default!r} is not one of the prior_sets ({', '.join(self.prior_sets)})"
            )
        if self.sensitivity is not None:
            unknown = [p for p in self.sensitivity.prior_sets if p not in self.prior_sets]
            if unknown:
                known = ", ".join(self.prior_sets)
                raise ValueError(f"sensitivity.prior_sets {', '.join(unknown)} not among the prior_sets ({known})")
        return self


def load_spec(spec: str | Path = "default") -> tuple[ModelSpec, str]:
    """Load a model spec (a bundled name such as ``default`` or a TOML path).

    A spec may start with ``extends = "NAME_OR_PATH"``: its tables are then merged onto that spec's
    (key by key; a key it gives replaces the base's), so a variant states only what it changes.

    Returns
    -------
    spec, sha256
        The validated spec and the SHA-256 of the file's bytes (with its base's, when it extends one).
    """
    data, digest = _read_spec_toml(resolve_spec(spec), seen=())
    path = resolve_spec(spec)
    try:
        parsed = ModelSpec.model_validate(data)
    except ValidationError as exc:
        loc, msg = validation_message(exc.errors())
        raise InputError(path, msg, field=loc or None) from None
    return parsed, digest


def _read_spec_toml(path: Path, seen: tuple[Path, ...]) -> tuple[dict, str]:
    """The spec's TOML as a dict with its ``extends`` chain merged in, and the SHA-256 of the bytes."""
    if not path.is_file():
        raise InputError(path, "model spec not found (give a bundled spec name or a .toml path)")
    if path.resolve() in seen:
        raise InputError(path, "spec extends itself (a cycle of extends)", field="extends")
    raw = path.read_bytes()
    try:
        data = tomllib.loads(decode_utf8(path, raw))
    except tomllib.TOMLDecodeError as exc:
        raise InputError(path, f"unreadable TOML: {exc}") from None
    digest = hashlib.sha256(raw)
    base_name = data.pop("extends", None)
    if base_name is None:
        return data, digest.hexdigest()
    base_path = Path(base_name) if str(base_name).endswith(".toml") else resolve_spec(base_name)
    if not base_path.is_absolute() and str(base_name).endswith(".toml"):
        base_path = path.parent / base_path
    base, base_digest = _read_spec_toml(base_path, (*seen, path.resolve()))
    digest.update(base_digest.encode())
    return _merged(base, data), digest.hexdigest()


def _merged(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        out[key] = _merged(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return out
