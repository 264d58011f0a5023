"""The synthesis priors: on the pooled effect ``mu`` and on the between-study SD ``tau`` (standardized units).

Every prior is named, with its parameters and its published source, and recorded in ``synthesis.json``
and the manifest: a synthesis never runs under an unstated prior.

Choices (docs/methods.md section 9):

* ``tau``: ``bartos2021_back_and_neck`` (the default) is the empirical heterogeneity prior of
  continuous outcomes in the Cochrane "Back and Neck" reviews, tau ~ InvGamma(shape 1.75, scale 0.57)
  in SMD units (Bartoš F et al., Stat Med 2021, doi:10.1002/sim.9170, as coded in the R package
  BayesTools, ``R/priors-informed.R``, commit 55035eea5f473b312bd65d2e77fbd27e2aa8e801): the same source
  as the package's default prior on the treatment difference. ``half_normal:S`` is tau ~ HalfNormal(S),
  the weakly informative family discussed by Röver C et al., Res Synth Methods 2021;12:448-474,
  doi:10.1002/jrsm.1475; the scale S is the user's choice and is recorded.
* ``mu``: ``weakly_informative`` (the default) is Student-t(5, 0, 0.37), Bartoš et al.'s "Back and Neck"
  prior for the effect (the package's ``weakly_informative`` prior set); ``normal:SD`` is N(0, SD^2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from bayes_stenosis.errors import InputError

__all__ = ["EffectPrior", "HeterogeneityPrior", "effect_prior", "heterogeneity_prior"]

BARTOS_SOURCE = (
    "Bartos F et al. Stat Med 2021, doi:10.1002/sim.9170, Cochrane 'Back and Neck' continuous "
    "outcomes (SMD), as coded in BayesTools R/priors-informed.R (commit 55035eea5f473b312bd65d2e77fbd27e2aa8e801)"
)
ROVER_SOURCE = (
    "Rover C et al. On weakly informative prior distributions for the heterogeneity parameter in Bayesian "
    "random-effects meta-analysis. Res Synth Methods 2021;12:448-474, doi:10.1002/jrsm.1475 (half-normal family); "
    "the scale is the user's choice"
)


@dataclass(frozen=True)
class HeterogeneityPrior:
    """The prior of tau (between-study SD, standardized units): ``half_normal`` (``scale``) or
    ``inverse_gamma`` (``shape``, ``scale``), with its name, text and source."""

    name: str
    family: str
    params: dict[str, float]
    source: str

    @property
    def dist(self):
        """The frozen scipy distribution of tau (a point mass for ``fixed``: scipy has none, so a
        degenerate uniform of width 0 is not used; callers check :attr:`fixed` first)."""
        if self.family == "half_normal":
            return stats.halfnorm(scale=self.params["scale"])
        return stats.invgamma(self.params["shape"], scale=self.params["scale"])

    @property
    def fixed(self) -> float | None:
        """tau's value when it is fixed (a point mass), else None."""
        return self.params["value"] if self.family == "fixed" else None

    def text(self) -> str:
        if self.family == "fixed":
            return f"tau fixed at {self.params['value']:g} (SMD)"
        if self.family == "half_normal":
            return f"tau ~ HalfNormal({self.params['scale']:g}) (SMD)"
        return f"tau ~ InvGamma(shape {self.params['shape']:g}, scale {self.params['scale']:g}) (SMD)"

    def to_natural(self, sd: float) -> HeterogeneityPrior:
        """The same prior on a natural scale whose standardising SD is ``sd`` (c tau ~ InvGamma(a, c b),
        c tau ~ HalfNormal(c s))."""
        params = {k: (v * sd if k in ("scale", "value") else v) for k, v in self.params.items()}
        return HeterogeneityPrior(self.name, self.family, params, self.source)

    def record(self) -> dict:
        """What ``synthesis.json`` and the manifest say about it."""
        q = [self.fixed] * 3 if self.fixed is not None else self.dist.ppf([0.025, 0.5, 0.975])
        return {
            "name": self.name,
            "family": self.family,
            **self.params,
            "text": self.text(),
            "source": self.source,
            "median": float(q[1]),
            "interval_95": [float(q[0]), float(q[2])],
        }


@dataclass(frozen=True)
class EffectPrior:
    """The prior of the pooled effect mu (standardized units): ``normal`` or ``student_t``."""

    name: str
    family: str
    params: dict[str, float]
    source: str

    @property
    def dist(self):
        p = self.params
        if self.family == "normal":
            return stats.norm(p["mu"], p["sigma"])
        return stats.t(p["nu"], p["mu"], p["sigma"])

    def text(self) -> str:
        p = self.params
        if self.family == "normal":
            return f"mu ~ Normal({p['mu']:g}, {p['sigma']:g}^2) (SMD)"
        return f"mu ~ Student-t(df {p['nu']:g}, {p['mu']:g}, {p['sigma']:g}) (SMD)"

    def record(self) -> dict:
        return {"name": self.name, "family": self.family, **self.params, "text": self.text(), "source": self.source}

    def to_natural(self, sd: float) -> EffectPrior:
        """The same prior on a natural scale whose standardising SD is ``sd``."""
        params = {k: (v * sd if k in ("mu", "sigma") else v) for k, v in self.params.items()}
        return EffectPrior(self.name, self.family, params, self.source)


def _positive(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (np.isfinite(value) and value > 0):
        raise InputError(None, f"{what}: expected a positive number after ':' (got {text!r})")
    return value


def heterogeneity_prior(spec: str | HeterogeneityPrior = "bartos2021_back_and_neck") -> HeterogeneityPrior:
    """``bartos2021_back_and_neck``, ``half_normal:SCALE`` or ``fixed:VALUE`` (SMD units; ``fixed:0`` is a
    common-effect synthesis).

    Raises
    ------
    InputError
        An unknown name or a scale that is not a positive number.
    """
    if isinstance(spec, HeterogeneityPrior):
        return spec
    if spec == "bartos2021_back_and_neck":
        return HeterogeneityPrior(spec, "inverse_gamma", {"shape": 1.75, "scale": 0.57}, BARTOS_SOURCE)
    if spec.startswith("half_normal:"):
        scale = _positive(spec.split(":", 1)[1], "--tau-prior half_normal")
        return HeterogeneityPrior(spec, "half_normal", {"scale": scale}, ROVER_SOURCE)
    if spec.startswith("fixed:"):
        text = spec.split(":", 1)[1]
        value = 0.0 if text.strip() in ("0", "0.0") else _positive(text, "--tau-prior fixed")
        return HeterogeneityPrior(spec, "fixed", {"value": value}, "user's choice: tau fixed (0: a common effect)")
    raise InputError(
        None,
        f"--tau-prior: unknown heterogeneity prior {spec!r} "
        "(bartos2021_back_and_neck, half_normal:SCALE or fixed:VALUE)",
    )


def effect_prior(spec: str | EffectPrior = "weakly_informative") -> EffectPrior:
    """``weakly_informative`` (Student-t(5, 0, 0.37)) or ``normal:SD`` (N(0, SD^2)), SMD units.

    Raises
    ------
    InputError
        An unknown name or an SD that is not a positive number.
    """
    if isinstance(spec, EffectPrior):
        return spec
    if spec == "weakly_informative":
        return EffectPrior(spec, "student_t", {"nu": 5.0, "mu": 0.0, "sigma": 0.37}, BARTOS_SOURCE)
    if spec.startswith("normal:"):
        sd = _positive(spec.split(":", 1)[1], "--mu-prior normal")
        return EffectPrior(spec, "normal", {"mu": 0.0, "sigma": sd}, "user's choice: N(0, SD^2), SD recorded")
    raise InputError(None, f"--mu-prior: unknown prior {spec!r} (weakly_informative or normal:SD)")
