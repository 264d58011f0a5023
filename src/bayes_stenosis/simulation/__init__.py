r"""Seeded simulation of a two-arm trial from a known truth, and every evidence level from it.

One simulated trial (patients with a baseline and follow-up scores on several outcomes) yields
each evidence level from the *same* patients:

======================  ========================================================================
level                   what :func:`write_study` writes
======================  ========================================================================
``ipd``                 ``ipd.csv``: the patient-level scores (empty value = missed visit)
``arm_summary``         ``arm_summaries.csv``: n, mean, SD of the *scores* (baseline, follow-up)
``arm_summary_change``  ``arm_summaries.csv``: n, mean, SD of the *change* from baseline
``contrast``            ``contrasts.csv``: new minus reference with CI, SE, p and df
``threshold``           ``thresholds.csv``: "P<alpha" / "P>alpha" between and within the arms
======================  ========================================================================

so a model fitted to any level can be compared with the truth and with the fits to the other
levels. Every simulated study folder says so (``study.simulated = true``, "SIMULATED" in the title,
citation and every ``source``) and carries ``truth.json`` (the truth, the seed and the package
version) beside ``study.toml``.

Generative model
----------------
Arms :math:`a \in \{\text{ref}, \text{new}\}` with :math:`n_a` patients, outcomes
:math:`o = 1..O` and follow-up times :math:`t = 1..T` (time 0 is the baseline). Per outcome the
truth gives the baseline mean :math:`\mu_o`, the SD :math:`\sigma_o` (the same at every time) and
the baseline-follow-up correlation :math:`\rho_o`; :math:`R` is the correlation between outcomes
at the same time, :math:`\tau` the time correlation (``time_corr``). The true mean changes are

.. math::

    c_{\text{ref},t,o} = \text{change\_reference}[t, o], \qquad
    c_{\text{new},t,o} = \text{change\_reference}[t, o] + \text{delta}[t, o].

For patient :math:`i` in arm :math:`a`, independently across patients,

.. math::

    z_i \sim N_O(0, R), \qquad
    u_i = (u_{i1}, \dots, u_{iT}) \sim N_{TO}(0, P \otimes C), \qquad z_i \perp u_i,

    b_{io} = \mu_o + \sigma_o z_{io}, \qquad
    y_{ito} = \mu_o + c_{a,t,o}
              + \sigma_o \left(\rho_o z_{io} + \sqrt{1 - \rho_o^2}\, u_{ito}\right),

where :math:`P` is the :math:`T \times T` matrix with 1 on the diagonal and :math:`\tau` elsewhere,
and :math:`C` is the outcome correlation of the innovations,

.. math::

    C_{oo'} = R_{oo'} \frac{1 - \rho_o \rho_{o'}}{\sqrt{(1 - \rho_o^2)(1 - \rho_{o'}^2)}},

chosen so that the scores at *every* time, follow-up included, have between-outcome correlation
:math:`R` (when all :math:`\rho_o` are equal, :math:`C = R`). Hence, exactly:

* :math:`E[b_{io}] = \mu_o`, :math:`E[y_{ito} - b_{io}] = c_{a,t,o}` (the true mean change), so
  the true difference in mean change is ``delta`` and :math:`\operatorname{SD}(b) =
  \operatorname{SD}(y_t) = \sigma_o`;
* :math:`\operatorname{corr}(b_o, y_{to}) = \rho_o`,
  :math:`\operatorname{corr}(b_o, b_{o'}) = \operatorname{corr}(y_{to}, y_{to'}) = R_{oo'}`,
  :math:`\operatorname{corr}(b_o, y_{to'}) = \rho_{o'} R_{oo'}`;
* :math:`\operatorname{corr}(y_{to}, y_{t'o'}) = \rho_o\rho_{o'}R_{oo'} + \tau(1 - \rho_o\rho_{o'})
  R_{oo'}` for :math:`t \ne t'` (:math:`\rho_o^2 + \tau(1 - \rho_o^2)` for the same outcome);
* the change :math:`d_{to} = y_{to} - b_{o}` has SD :math:`\sigma_o\sqrt{2(1 - \rho_o)}`.

:func:`score_correlation` and :func:`change_covariance` return these matrices. A truth whose
:math:`C` (or :math:`P \otimes C`) is not positive semi-definite cannot be generated and is refused.

Then, in this order: scores (baseline included) are rounded to multiples of ``round_to``
(:math:`\text{round}(y / h)\,h`), clipped to ``[scale_min, scale_max]`` when ``clip`` is set, and
each patient misses each follow-up visit with probability ``dropout`` independently (MCAR): all
outcomes of a missed visit are missing; baselines are never missing.

**Clipping biases the means and SDs** (a floor or ceiling pulls the scores inward), so the
observed mean change no longer equals ``change_reference`` (+ ``delta``). :func:`expected_scores`
gives the exact expectation after rounding and clipping; parameter-recovery tests that compare
with the truth itself should keep ``clip=False`` (the default). The loader refuses patient-level
scores outside the scale range, so writing the ``ipd`` level needs ``clip=True`` unless every score
happens to fall inside it.

Random numbers come from ``numpy.random.SeedSequence(seed)`` with one independent child stream
per arm and one for dropout, so the same seed gives the same numbers and changing ``delta``,
``dropout``, rounding, clipping or the size of the new arm leaves the reference arm's patients
(and all standardised draws) unchanged: common random numbers across scenarios.
"""

from bayes_stenosis.simulation.covariance import change_covariance, score_correlation
from bayes_stenosis.simulation.evidence import contrasts_from_patients, summarise_arms, thresholds_from_patients
from bayes_stenosis.simulation.expected import expected_scores
from bayes_stenosis.simulation.folders import LEVELS, TRUTH_FILE, read_truth, write_study
from bayes_stenosis.simulation.patients import simulate_patients
from bayes_stenosis.simulation.truths import (
    ARMS,
    INSTRUMENTS,
    NEW_ARM,
    REFERENCE_ARM,
    OutcomeTruth,
    TrialTruth,
    default_truth,
)

__all__ = [
    "ARMS",
    "INSTRUMENTS",
    "LEVELS",
    "NEW_ARM",
    "OutcomeTruth",
    "REFERENCE_ARM",
    "TRUTH_FILE",
    "TrialTruth",
    "change_covariance",
    "contrasts_from_patients",
    "default_truth",
    "expected_scores",
    "read_truth",
    "score_correlation",
    "simulate_patients",
    "summarise_arms",
    "thresholds_from_patients",
    "write_study",
]
