r"""Frequentist reproduction of the published tests, from the entered data (``bayes-stenosis reproduce``).

For every published statement the table gives what was printed, what the entered numbers give, and
whether the two agree within a stated tolerance; where the data do not allow a recomputation the
row says why. It catches data-entry errors (an SE entered as an SD changes a recomputed p by a
factor of :math:`\sqrt n` in the statistic) and shows where "P>0.05" and equivalence part ways.

Tests (difference = new minus reference; lower or higher is better does not change a test):

* two-sample t (pooled SD), Welch t (Welch-Satterthwaite df) on change scores, from per-arm
  ``n, mean, sd`` of the change (``scipy.stats.ttest_ind_from_stats``);
* from baseline and follow-up scores: the t-test on follow-up scores (exact from the data), the
  t-test on change with :math:`SD_{change} = \sqrt{SD_b^2 + SD_f^2 - 2\rho SD_b SD_f}` and an
  ANCOVA approximation, :math:`\hat d = \Delta_f - \rho\,(SD_f/SD_b)\,\Delta_b`,
  :math:`SE = SD_f\sqrt{1-\rho^2}\sqrt{1/n_1 + 1/n_2}`, df :math:`n_1 + n_2 - 3` (Cochrane Handbook
  6.5.2.8; Clifton & Clifton, Trials 2019); both need :math:`\rho`, taken as the mean of the
  spec's Beta prior for the instrument and labelled as an assumption;
* paired t within an arm on the change (:math:`t = \bar c / (s_c/\sqrt n)`, df n - 1);
* two one-sided tests (TOST) for equivalence at the margin :math:`\pm m`:
  :math:`p_{TOST} = \max\{P(T_{df} > (\hat d + m)/SE),\ P(T_{df} < (\hat d - m)/SE)\}`;
  equivalence is shown at level alpha when :math:`p_{TOST} < \alpha`, i.e. the
  :math:`1 - 2\alpha` interval lies inside :math:`\pm m` (statsmodels ``ttost_ind`` on the same data
  gives the same numbers; tests/test_reproduce.py).

Tolerance. Entered numbers are rounded as printed, so a recomputed p is an interval: the test is
evaluated at the corners of the rounding box (each mean, SD, estimate or CI limit +- half a unit
of its last decimal; numbers printed together, a mean and its SD or an estimate and its CI, share
the most decimals found among them, since the loader does not keep trailing zeros). A published exact p is an
interval too (+- half a unit of its last printed decimal). "consistent" = the intervals overlap;
"P>alpha" is consistent when the recomputed interval reaches above alpha; "P<alpha" when it reaches
below alpha with the difference in the stated direction.

Threshold statements without data (an abstract's "P>0.05"): nothing can be recomputed, but their
frequentist meaning can be shown under assumed SDs (the outcome's cited ``reference_sd`` and the
spec's :math:`\rho`, :math:`SD_{change} = s\sqrt{2(1-\rho)}`, arm sizes from the study): "P>alpha"
admits every :math:`|d| < t_{1-\alpha/2,df} SE`, while TOST at the margin could succeed only if
:math:`|d| + t_{1-\alpha,df} SE < m`. These rows are labelled as computed from assumed SDs, not
from trial data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from bayes_stenosis import __version__
from bayes_stenosis.provenance import provenance
from bayes_stenosis.spec import ModelSpec, load_spec
from bayes_stenosis.stats import sd_change
from bayes_stenosis.study import Study, contrast_standard_errors, load_study

#: Columns of reproduce.csv, in order (the report reads it by these names).
COLUMNS = (
    "study",
    "kind",
    "source",
    "time",
    "outcome",
    "comparison",
    "arm",
    "test",
    "published",
    "published_p",
    "recomputed",
    "estimate",
    "se",
    "df",
    "statistic",
    "recomputed_p",
    "recomputed_p_low",
    "recomputed_p_high",
    "ci_low",
    "ci_high",
    "margin",
    "tost_p",
    "tost_equivalent",
    "max_abs_difference_if_p_above_alpha",
    "min_abs_difference_if_p_below_alpha",
    "max_abs_difference_for_tost_equivalence",
    "status",
    "tolerance",
    "basis",
    "note",
)

TOST_ALPHA = 0.05


@dataclass
class ReproduceResult:
    study_id: str
    folder: Path | None
    table: pd.DataFrame


# ---------------------------------------------------------------------------------------------
# Pure statistics (summary-statistic forms; checked against scipy/statsmodels in the tests)
# ---------------------------------------------------------------------------------------------


def two_sample(mean_new, sd_new, n_new, mean_ref, sd_ref, n_ref, test: str) -> dict:
    """Difference new - reference with SE, df, t and two-sided p for ``two_sample_t``, ``welch_t``
    or ``normal`` (pooled-SD SE, normal reference)."""
    d = mean_new - mean_ref
    if test == "welch_t":
        a, b = sd_new**2 / n_new, sd_ref**2 / n_ref
        se = math.sqrt(a + b)
        dof = (a + b) ** 2 / (a**2 / (n_new - 1) + b**2 / (n_ref - 1))
    else:
        pooled = math.sqrt(((n_new - 1) * sd_new**2 + (n_ref - 1) * sd_ref**2) / (n_new + n_ref - 2))
        se = pooled * math.sqrt(1 / n_new + 1 / n_ref)
        dof = n_new + n_ref - 2 if test == "two_sample_t" else math.inf
    return _finish(d, se, dof)


def one_sample(mean, sd, n, test: str = "paired_t") -> dict:
    """Mean change against 0 (paired t on the change; ``normal``: z)."""
    se = sd / math.sqrt(n)
    return _finish(mean, se, n - 1 if test == "paired_t" else math.inf)


def _dist(dof):
    return stats.norm if not np.isfinite(dof) else stats.t(dof)


def _finish(d: float, se: float, dof: float) -> dict:
    t = d / se
    p = float(2 * _dist(dof).sf(abs(t)))
    q = float(_dist(dof).ppf(0.975))
    return {"estimate": d, "se": se, "df": dof, "statistic": t, "p": p, "ci_low": d - q * se, "ci_high": d + q * se}


def tost(d: float, se: float, dof: float, margin: float) -> float:
    """TOST p-value for equivalence within (-margin, margin)."""
    dist = _dist(dof)
    p_lower = float(dist.sf((d + margin) / se))  # H0: d <= -m
    p_upper = float(dist.cdf((d - margin) / se))  # H0: d >= m
    return max(p_lower, p_upper)


def ancova_approximation(
    base_new, fu_new, sd_b_new, sd_f_new, n_new, base_ref, fu_ref, sd_b_ref, sd_f_ref, n_ref, rho
) -> dict:
    """Baseline-adjusted difference from summary statistics with an assumed correlation ``rho``."""
    pooled_b = math.sqrt(((n_new - 1) * sd_b_new**2 + (n_ref - 1) * sd_b_ref**2) / (n_new + n_ref - 2))
    pooled_f = math.sqrt(((n_new - 1) * sd_f_new**2 + (n_ref - 1) * sd_f_ref**2) / (n_new + n_ref - 2))
    slope = rho * pooled_f / pooled_b
    d = (fu_new - fu_ref) - slope * (base_new - base_ref)
    se = pooled_f * math.sqrt(1 - rho**2) * math.sqrt(1 / n_new + 1 / n_ref)
    return _finish(d, se, n_new + n_ref - 3)


def decimals(x: float) -> int:
    """Decimals of an entered number as the loader keeps it (``7.8`` -> 1, ``12`` -> 0)."""
    if x is None or not np.isfinite(x):
        return 0
    text = repr(float(x))
    if "e" in text:
        mantissa, exp = text.split("e")
        frac = len(mantissa.split(".")[1].rstrip("0")) if "." in mantissa else 0
        return max(0, frac - int(exp))
    frac = text.split(".")[1].rstrip("0")
    return len(frac)


def half_unit(x: float) -> float:
    return 0.5 * 10.0 ** (-decimals(x))


def common_halves(values: dict, names) -> dict:
    """Half a unit of the last decimal, shared by numbers printed together (a table prints a mean and
    its SD, or an estimate and its CI, to the same decimals; the loader drops trailing zeros, so the
    most decimals among them is the printed precision)."""
    d = max(decimals(values[k]) for k in names)
    return dict.fromkeys(names, 0.5 * 10.0 ** (-d))


def p_interval(func, values: dict, halves: dict) -> tuple[float, float]:
    """Min and max of ``func(**values)["p"]`` over the corners of the rounding box."""
    names = [k for k, h in halves.items() if h > 0]
    ps = []
    for mask in range(2 ** len(names)):
        v = dict(values)
        for i, k in enumerate(names):
            v[k] = values[k] + (halves[k] if mask >> i & 1 else -halves[k])
            if k.startswith("sd") or k.startswith("se"):
                v[k] = max(v[k], 1e-12)
        ps.append(func(**v)["p"])
    base = func(**values)["p"]
    return min([base, *ps]), max([base, *ps])


def _intervals_overlap(lo1, hi1, lo2, hi2) -> bool:
    return lo1 <= hi2 and lo2 <= hi1


# ---------------------------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------------------------


def _empty_row(study: Study, **kw) -> dict:
    row = dict.fromkeys(COLUMNS, np.nan)
    row.update({"study": study.id, "note": "", "basis": "", "tolerance": "", "recomputed": "", "published": ""})
    row.update(kw)
    return row


def _published_text(rec: dict) -> str:
    p = rec.get("p_value")
    text = f"P{rec['relation']}{rec['alpha']:g}"
    if p is not None and np.isfinite(p):
        text += f" (p={p:g})"
    if rec.get("direction"):
        text += f", {rec['direction']}"
    return text


def _compare_threshold(rec: dict, p_lo: float, p_hi: float, estimate: float, new_better_sign: float) -> tuple:
    """Status and tolerance text of a recomputed p interval against a threshold row."""
    alpha = rec["alpha"]
    p = rec.get("p_value")
    if p is not None and np.isfinite(p):
        h = half_unit(p)
        ok = _intervals_overlap(p_lo, p_hi, p - h, p + h)
        tol = f"published p {p:g} +- {h:g} (its last printed decimal) vs recomputed {p_lo:.4g}-{p_hi:.4g}"
    elif rec["relation"] == ">":
        ok = p_hi > alpha
        tol = f"'P>{alpha:g}' holds if the recomputed p can exceed {alpha:g} (max {p_hi:.4g})"
    else:
        ok = p_lo < alpha
        tol = f"'P<{alpha:g}' holds if the recomputed p can fall below {alpha:g} (min {p_lo:.4g})"
    if ok and rec["relation"] == "<" and rec.get("direction"):
        if rec["comparison"] == "between":
            wanted = 1.0 if rec["direction"] == "favours_new" else -1.0
            ok = np.sign(new_better_sign * estimate) == wanted
        else:
            wanted = 1.0 if rec["direction"] == "improvement" else -1.0
            ok = np.sign(new_better_sign * estimate) == wanted
        if not ok:
            tol += "; the recomputed difference has the opposite direction"
    return ("consistent" if ok else "inconsistent"), tol


def _assumed_rho(spec: ModelSpec, instrument: str) -> float:
    fixed = spec.correlation.fixed_baseline_followup
    return float(fixed) if fixed is not None else float(spec.correlation.baseline_followup(instrument).mean)


def reproduce_table(study: Study, spec: ModelSpec) -> pd.DataFrame:
    """The published-vs-recomputed table of a study (pure: reads the study, writes nothing)."""
    rows: list[dict] = []
    new, ref = study.new_arm, study.reference_arm
    base_t = study.meta.times.baseline
    usable = study.usable_arm_summaries()
    arm_cells = study.arm_summary_cells()
    thr = study.evidence["threshold"]
    sign_of = {o: (-1.0 if study.outcome(o).direction == "lower_is_better" else 1.0) for o in study.outcomes}

    def get(arm, o, kind, t):
        r = usable[(usable.arm == arm) & (usable.outcome == o) & (usable.kind == kind) & (usable.time == t)]
        return None if r.empty else r.iloc[0]

    # --- 1. arm-summary cells: recompute between-arm tests; compare with any threshold row -----
    for t, o in sorted(arm_cells):
        margin = study.outcome(o).margin
        rho = _assumed_rho(spec, study.outcome(o).instrument)
        cell_thr = thr[(thr.time == t) & (thr.outcome == o) & (thr.comparison == "between")].to_dict("records")
        cn, cr = get(new, o, "change", t), get(ref, o, "change", t)
        candidates = []  # (label, test, func, values, halves, basis)
        if cn is not None and cr is not None:
            values = {
                "mean_new": cn["mean"],
                "sd_new": cn["sd"],
                "n_new": cn["n"],
                "mean_ref": cr["mean"],
                "sd_ref": cr["sd"],
                "n_ref": cr["n"],
            }
            halves = common_halves(values, ["mean_new", "sd_new", "mean_ref", "sd_ref"])
            src = f"arm_summaries.csv rows {int(cn['row'])}, {int(cr['row'])}"
            for test in ("two_sample_t", "welch_t"):
                candidates.append(("change", test, values, halves, src, "entered change n, mean, SD"))
        else:
            bn, fn, br, fr = (
                get(new, o, "score", base_t),
                get(new, o, "score", t),
                get(ref, o, "score", base_t),
                get(ref, o, "score", t),
            )
            src = f"arm_summaries.csv rows {', '.join(str(int(r['row'])) for r in (bn, fn, br, fr))}"
            fvalues = {
                "mean_new": fn["mean"],
                "sd_new": fn["sd"],
                "n_new": fn["n"],
                "mean_ref": fr["mean"],
                "sd_ref": fr["sd"],
                "n_ref": fr["n"],
            }
            fhalves = common_halves(fvalues, ["mean_new", "sd_new", "mean_ref", "sd_ref"])
            candidates.append(("follow_up", "two_sample_t", fvalues, fhalves, src, "entered follow-up n, mean, SD"))
            cvalues = {
                "mean_new": fn["mean"] - bn["mean"],
                "sd_new": float(sd_change(bn["sd"], fn["sd"], rho)),
                "n_new": fn["n"],
                "mean_ref": fr["mean"] - br["mean"],
                "sd_ref": float(sd_change(br["sd"], fr["sd"], rho)),
                "n_ref": fr["n"],
            }
            h = common_halves(
                {f"{k}{i}": r[k] for i, r in enumerate((bn, fn, br, fr)) for k in ("mean", "sd")},
                [f"{k}{i}" for i in range(4) for k in ("mean", "sd")],
            )["mean0"]
            chalves = {"mean_new": 2 * h, "mean_ref": 2 * h}  # a change is a difference of two rounded means
            candidates.append(
                (
                    "change",
                    "two_sample_t",
                    cvalues,
                    chalves,
                    src,
                    f"change SD from baseline/follow-up SDs, assumed rho {rho:g}",
                )
            )
            anc = ancova_approximation(
                bn["mean"],
                fn["mean"],
                bn["sd"],
                fn["sd"],
                fn["n"],
                br["mean"],
                fr["mean"],
                br["sd"],
                fr["sd"],
                fr["n"],
                rho,
            )
            rows.append(
                _empty_row(
                    study,
                    kind="recomputed",
                    source=src,
                    time=t,
                    outcome=o,
                    comparison="between",
                    test="ancova_approximation",
                    **_stat_cols(anc, margin),
                    recomputed=f"d={anc['estimate']:.4g}, p={anc['p']:.4g} (ANCOVA approximation)",
                    status="no published value",
                    basis=f"entered scores, assumed rho {rho:g} (ANCOVA approximation)",
                    note="baseline-adjusted estimate from summary statistics; shown for comparison with a published "
                    "ANCOVA, not a published test here",
                )
            )
        for measure, test, values, halves, src, basis in candidates:
            res = two_sample(**values, test=test)
            p_lo, p_hi = p_interval(lambda test=test, **v: two_sample(**v, test=test), values, halves)
            matching = [r for r in cell_thr if r["test"] == test or (test == "two_sample_t" and r["test"] == "normal")]
            base = {
                "kind": "recomputed",
                "source": src,
                "time": t,
                "outcome": o,
                "comparison": "between",
                "test": f"{test} on {measure}",
                **_stat_cols(res, margin),
                "recomputed_p_low": p_lo,
                "recomputed_p_high": p_hi,
                "recomputed": f"d={res['estimate']:.4g}, p={res['p']:.4g} ({p_lo:.4g}-{p_hi:.4g} over input rounding)",
                "basis": basis,
            }
            if matching and measure == ("change" if cn is not None else "follow_up"):
                for rec in matching:
                    status, tol = _compare_threshold(rec, p_lo, p_hi, res["estimate"], sign_of[o])
                    rows.append(
                        _empty_row(
                            study,
                            **(base | {"source": f"{src}; thresholds.csv row {int(rec['row'])}"}),
                            published=_published_text(rec),
                            published_p=rec["p_value"],
                            status=status,
                            tolerance=tol,
                            note=_explain(status, rec, res),
                        )
                    )
            else:
                rows.append(_empty_row(study, **base, status="no published value"))
        # within-arm tests on change rows
        for arm, rec_change in ((new, cn), (ref, cr)):
            if rec_change is None:
                continue
            for rec in thr[
                (thr.time == t) & (thr.outcome == o) & (thr.comparison == "within") & (thr.arm == arm)
            ].to_dict("records"):
                values = {"mean": rec_change["mean"], "sd": rec_change["sd"], "n": rec_change["n"]}
                halves = common_halves(values, ["mean", "sd"])
                res = one_sample(**values, test=rec["test"])
                p_lo, p_hi = p_interval(lambda test=rec["test"], **v: one_sample(**v, test=test), values, halves)
                status, tol = _compare_threshold(rec, p_lo, p_hi, res["estimate"], sign_of[o])
                rows.append(
                    _empty_row(
                        study,
                        kind="recomputed",
                        source=f"arm_summaries.csv row {int(rec_change['row'])}; thresholds.csv row {int(rec['row'])}",
                        time=t,
                        outcome=o,
                        comparison="within",
                        arm=arm,
                        test=rec["test"],
                        **_stat_cols(res, None),
                        recomputed_p_low=p_lo,
                        recomputed_p_high=p_hi,
                        recomputed=f"change={res['estimate']:.4g}, p={res['p']:.4g}",
                        published=_published_text(rec),
                        published_p=rec["p_value"],
                        status=status,
                        tolerance=tol,
                        basis="entered change n, mean, SD",
                        note=_explain(status, rec, res),
                    )
                )

    # --- 2. contrasts: the printed p against the printed estimate and CI/SE; TOST ------------
    contrasts = contrast_standard_errors(study) if len(study.evidence["contrast"]) else pd.DataFrame()
    sizes, size_source = study.randomised_arm_sizes()
    for rec in contrasts.to_dict("records"):
        t, o = rec["time"], rec["outcome"]
        margin = study.outcome(o).margin
        dof = rec["df"] if np.isfinite(rec["df"]) else math.inf
        res = _finish(rec["estimate_nmr"], rec["se_derived"], dof)
        src = f"contrasts.csv row {int(rec['row'])}"
        published = f"{rec['estimate']:g}"
        if np.isfinite(rec["ci_low"]):
            published += f" ({rec['ci_level']:.0%} CI {rec['ci_low']:g} to {rec['ci_high']:g})"
        if np.isfinite(rec["se"]):
            published += f", SE {rec['se']:g}"
        if np.isfinite(rec["p_value"]):
            published += f", p={rec['p_value']:g}"
        base = {
            "kind": "contrast",
            "source": src,
            "time": t,
            "outcome": o,
            "comparison": "between",
            "test": f"{'t, df=' + format(dof, 'g') if np.isfinite(dof) else 'normal'} on {rec['measure']}",
            "published": published,
            "published_p": rec["p_value"],
            **_stat_cols(res, margin),
        }
        has_precision = np.isfinite(rec["se"]) or np.isfinite(rec["ci_low"])
        if has_precision and np.isfinite(rec["p_value"]):
            sign = 1.0 if rec["direction"] == "new_minus_reference" else -1.0
            if np.isfinite(rec["se"]):

                def from_se(estimate, se, dof=dof):
                    return _finish(estimate, se, dof)

                values = {"estimate": rec["estimate"], "se": rec["se"]}
                halves = common_halves(values, ["estimate", "se"])
                func = from_se
            else:
                q = float(_dist(dof).ppf(1 - (1 - rec["ci_level"]) / 2))

                def from_ci(estimate, ci_low, ci_high, q=q, dof=dof):
                    return _finish(estimate, (ci_high - ci_low) / (2 * q), dof)

                values = {"estimate": rec["estimate"], "ci_low": rec["ci_low"], "ci_high": rec["ci_high"]}
                halves = common_halves(values, ["estimate", "ci_low", "ci_high"])
                func = from_ci
            p_lo, p_hi = p_interval(func, values, halves)
            h = half_unit(rec["p_value"])
            ok = _intervals_overlap(p_lo, p_hi, rec["p_value"] - h, rec["p_value"] + h)
            rows.append(
                _empty_row(
                    study,
                    **base,
                    recomputed_p_low=p_lo,
                    recomputed_p_high=p_hi,
                    recomputed=f"p={func(**values)['p']:.4g} ({p_lo:.4g}-{p_hi:.4g}) from the estimate and its "
                    f"{'SE' if np.isfinite(rec['se']) else 'CI'}",
                    status="consistent" if ok else "inconsistent",
                    tolerance=f"published p {rec['p_value']:g} +- {h:g} vs recomputed {p_lo:.4g}-{p_hi:.4g} "
                    "(estimate and CI/SE +- half a unit of their last decimal)",
                    basis="entered estimate with CI/SE" + (" (sign: new minus reference)" if sign < 0 else ""),
                    note=""
                    if ok
                    else "the printed p does not follow from the printed estimate and CI/SE: check the "
                    "reference distribution (t vs normal, df), a one-sided p, or a transcription error",
                )
            )
        else:
            why = (
                "the exact p is the only precision information: the SE is derived from it (se_from_p), so the p "
                "cannot be checked independently; CI and TOST below follow from that SE"
                if np.isfinite(rec["p_value"])
                else "no p-value printed: nothing to compare; CI and TOST from the printed CI/SE"
            )
            note = ""
            if sizes and np.isfinite(rec["p_value"]):
                implied_sd = rec["se_derived"] / math.sqrt(1 / sizes[new] + 1 / sizes[ref])
                ref_sd = study.outcome(o).reference_sd
                rho = _assumed_rho(spec, study.outcome(o).instrument)
                note = f"plausibility: the implied SD of change is {implied_sd:.3g} with the {size_source}" + (
                    f" (reference SD {ref_sd:g} with rho {rho:g} gives {ref_sd * math.sqrt(2 * (1 - rho)):.3g})"
                    if ref_sd
                    else ""
                )
            rows.append(
                _empty_row(
                    study,
                    **base,
                    recomputed=f"SE {res['se']:.4g}, 95% CI {res['ci_low']:.4g} to {res['ci_high']:.4g}",
                    status="not recomputable",
                    tolerance="",
                    basis="entered estimate and p" if np.isfinite(rec["p_value"]) else "entered estimate and CI/SE",
                    note=f"{why}. {note}".strip(),
                )
            )
        # arithmetic check of a derived estimate against the per-arm changes entered as facts
        arm_df = study.evidence["arm_summary"]
        ch = arm_df[(arm_df.kind == "change") & (arm_df.time == t) & (arm_df.outcome == o) & arm_df["mean"].notna()]
        if set(ch.arm) == {new, ref}:
            mn, mr = (ch[ch.arm == a].iloc[0] for a in (new, ref))
            diff = mn["mean"] - mr["mean"]
            h = half_unit(mn["mean"]) + half_unit(mr["mean"]) + half_unit(rec["estimate"])
            ok = abs(diff - rec["estimate_nmr"]) <= h + 1e-12
            rows.append(
                _empty_row(
                    study,
                    kind="arithmetic",
                    source=f"{src}; arm_summaries.csv rows {int(mn['row'])}, {int(mr['row'])}",
                    time=t,
                    outcome=o,
                    comparison="between",
                    test="difference of the per-arm mean changes",
                    published=f"{rec['estimate']:g}",
                    recomputed=f"{mn['mean']:g} - ({mr['mean']:g}) = {diff:.4g}",
                    estimate=diff,
                    status="consistent" if ok else "inconsistent",
                    tolerance=f"+- {h:g} (half a unit of each entered decimal)",
                    basis="entered per-arm mean changes (no n or SD: not a test)",
                )
            )

    # --- 3. threshold statements without data: their meaning under assumed SDs ---------------
    ipd_cells = study.ipd_cells()
    covered = set(arm_cells) | ipd_cells | {(float(r["time"]), str(r["outcome"])) for r in contrasts.to_dict("records")}
    for rec in thr.to_dict("records"):
        t, o = float(rec["time"]), str(rec["outcome"])
        if (t, o) in covered:
            if (t, o) in arm_cells:
                continue  # compared above
            row = _threshold_row(study, rec)
            row["note"] = (
                "patient-level data: recomputing the test from ipd.csv is not implemented in this version"
                if (t, o) in ipd_cells
                else "this cell's evidence is a contrast without per-arm data; the statement is superseded"
            )
            rows.append(row)
            continue
        rows.append(_threshold_meaning(study, spec, rec, sizes, size_source))
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    return table


def _stat_cols(res: dict, margin: float | None) -> dict:
    out = {
        "estimate": res["estimate"],
        "se": res["se"],
        "df": res["df"],
        "statistic": res["statistic"],
        "recomputed_p": res["p"],
        "ci_low": res["ci_low"],
        "ci_high": res["ci_high"],
    }
    if margin is not None:
        p = tost(res["estimate"], res["se"], res["df"], margin)
        out.update({"margin": margin, "tost_p": p, "tost_equivalent": bool(p < TOST_ALPHA)})
    return out


def _explain(status: str, rec: dict, res: dict) -> str:
    if status == "consistent":
        return ""
    return (
        f"the entered data give p={res['p']:.3g} against the published {_published_text(rec)}: check SD vs SE "
        "(an SE entered as an SD makes the test sqrt(n) times weaker), the test used (change vs follow-up, "
        "pooled vs Welch, paired) and the transcription"
    )


def _threshold_row(study: Study, rec: dict) -> dict:
    """The identifying columns of a thresholds.csv row, status "not recomputable" until filled in."""
    return _empty_row(
        study,
        kind="threshold",
        source=f"thresholds.csv row {int(rec['row'])}",
        time=float(rec["time"]),
        outcome=str(rec["outcome"]),
        comparison=rec["comparison"],
        arm=rec["arm"] or "",
        test=rec["test"],
        published=_published_text(rec),
        published_p=rec["p_value"],
        status="not recomputable",
    )


def _threshold_meaning(study: Study, spec: ModelSpec, rec: dict, sizes: dict, size_source: str) -> dict:
    """A threshold row with no data behind it: what it admits under assumed SDs."""
    o = str(rec["outcome"])
    out = study.outcome(o)
    base = _threshold_row(study, rec)
    reason = "only a threshold statement: no means or SDs are entered for this cell"
    if out.reference_sd is None or not sizes:
        base["note"] = reason + "; no reference SD or arm sizes to show its meaning under assumptions"
        return base
    rho = _assumed_rho(spec, out.instrument)
    sd_c = out.reference_sd * math.sqrt(2 * (1 - rho))
    alpha = rec["alpha"]
    if rec["comparison"] == "between":
        n1, n2 = sizes[study.new_arm], sizes[study.reference_arm]
        se = sd_c * math.sqrt(1 / n1 + 1 / n2)
        if rec["test"] == "welch_t":
            a, b = 1 / n1, 1 / n2
            dof = (a + b) ** 2 / (a**2 / (n1 - 1) + b**2 / (n2 - 1))
        elif rec["test"] == "normal":
            dof = math.inf
        else:
            dof = n1 + n2 - 2
        n_text = f"n {n1:g} + {n2:g} ({size_source})"
    else:
        n_a = sizes[rec["arm"]]
        se = sd_c / math.sqrt(n_a)
        dof = n_a - 1 if rec["test"] == "paired_t" else math.inf
        n_text = f"n {n_a:g} ({size_source})"
    dist = _dist(dof)
    crit = float(dist.ppf(1 - alpha / 2))
    margin = out.margin
    base.update(
        {
            "se": se,
            "df": dof,
            "margin": margin if rec["comparison"] == "between" else np.nan,
            "basis": f"ASSUMED, not trial data: SD of change = reference SD {out.reference_sd:g} x sqrt(2(1 - rho)), "
            f"rho {rho:.3g} (spec), = {sd_c:.3g}; {n_text}",
            "tolerance": "",
        }
    )
    bound = crit * se
    if rec["relation"] == ">":
        base["max_abs_difference_if_p_above_alpha"] = bound
    else:
        base["min_abs_difference_if_p_below_alpha"] = bound
    notes = [reason]
    if rec["comparison"] == "between" and margin is not None:
        t95 = float(dist.ppf(1 - TOST_ALPHA))
        tost_room = margin - t95 * se
        base["max_abs_difference_for_tost_equivalence"] = tost_room
        if np.isfinite(rec["p_value"]):
            implied = float(dist.ppf(1 - rec["p_value"] / 2)) * se
            p_tost = tost(implied, se, dof, margin)
            base.update({"estimate": implied, "tost_p": p_tost, "tost_equivalent": bool(p_tost < TOST_ALPHA)})
            notes.append(
                f"the exact p {rec['p_value']:g} implies |d| = {implied:.3g} {out.unit} under these SDs; TOST at "
                f"+-{margin:g} gives p = {p_tost:.3g}"
            )
        if rec["relation"] == ">":
            if tost_room <= 0:
                notes.append(
                    f"'P>{alpha:g}' admits |d| up to {bound:.3g} {out.unit}; TOST at +-{margin:g} could not succeed "
                    f"even at d = 0 (t_{{0.95}} x SE = {t95 * se:.3g} >= margin): P>{alpha:g} and equivalence part ways"
                )
            elif bound > tost_room:
                notes.append(
                    f"'P>{alpha:g}' admits |d| up to {bound:.3g} {out.unit}, but TOST at +-{margin:g} needs "
                    f"|d| < {tost_room:.3g}: any |d| from {tost_room:.3g} to {bound:.3g} is 'P>{alpha:g}' and yet "
                    "not shown equivalent: P>alpha and equivalence part ways"
                )
            else:
                notes.append(f"every |d| compatible with 'P>{alpha:g}' would also pass TOST at +-{margin:g}")
        else:
            notes.append(
                f"'P<{alpha:g}' means |d| >= {bound:.3g} {out.unit} ({rec['direction']}); the margin is {margin:g}"
            )
    else:
        notes.append(
            f"'P{rec['relation']}{alpha:g}' within the arm means |change| {'>=' if rec['relation'] == '<' else '<'} "
            f"{bound:.3g} {out.unit}"
        )
    base["note"] = "; ".join(notes)
    summary = [f"ASSUMED SD {sd_c:.3g}, SE {se:.3g}"]
    if np.isfinite(base["max_abs_difference_if_p_above_alpha"]):
        summary.append(f"P>{alpha:g} <=> |d| < {bound:.3g}")
    if np.isfinite(base["min_abs_difference_if_p_below_alpha"]):
        summary.append(f"P<{alpha:g} <=> |d| >= {bound:.3g}")
    if np.isfinite(base["max_abs_difference_for_tost_equivalence"]):
        summary.append(f"TOST at +-{margin:g} needs |d| < {base['max_abs_difference_for_tost_equivalence']:.3g}")
    base["recomputed"] = "; ".join(summary)
    return base


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------


def write_reproduce(folder: Path, study: Study, spec: ModelSpec, table: pd.DataFrame | None = None) -> pd.DataFrame:
    """Write ``reproduce.csv`` and ``reproduce.md`` into an existing folder (e.g. a run folder being
    written); returns the table."""
    table = reproduce_table(study, spec) if table is None else table
    table.to_csv(folder / "reproduce.csv", index=False)
    (folder / "reproduce.md").write_text(markdown(table, study))
    return table


def markdown(table: pd.DataFrame, study: Study) -> str:
    lines = [
        f"# {study.id}: published vs recomputed frequentist tests",
        "",
        f"{study.meta.study.citation}",
        "",
        "Recomputed from the entered data (bayes-stenosis reproduce). Differences are new minus reference "
        f"({study.new_arm} minus {study.reference_arm}). 'consistent' = the recomputed p interval (over the "
        "rounding of the entered numbers) overlaps the published p (+- half its last decimal), or lies on "
        "the published side of alpha; TOST at the study margin, alpha 0.05. Rows marked ASSUMED use cited "
        "reference SDs and the spec's correlation, not trial data.",
        "",
        "| week | outcome | comparison | test | published | recomputed | TOST p | status | basis / note |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def cell(v, fmt="{:.3g}"):
        if v is None or (isinstance(v, float) and not np.isfinite(v)):
            return ""
        return fmt.format(v) if isinstance(v, float) else str(v).replace("|", "/")

    for rec in table.to_dict("records"):
        extra = []
        if isinstance(rec["max_abs_difference_if_p_above_alpha"], float) and np.isfinite(
            rec["max_abs_difference_if_p_above_alpha"]
        ):
            extra.append(f"P>alpha admits |d| <= {rec['max_abs_difference_if_p_above_alpha']:.3g}")
        if isinstance(rec["max_abs_difference_for_tost_equivalence"], float) and np.isfinite(
            rec["max_abs_difference_for_tost_equivalence"]
        ):
            extra.append(f"TOST needs |d| < {rec['max_abs_difference_for_tost_equivalence']:.3g}")
        note = "; ".join(x for x in (rec["basis"], *extra, rec["note"], rec["tolerance"]) if x)
        lines.append(
            f"| {cell(rec['time'], '{:g}')} | {cell(rec['outcome'])} | {cell(rec['comparison'])}"
            f"{(' ' + rec['arm']) if isinstance(rec['arm'], str) and rec['arm'] else ''} | {cell(rec['test'])} | "
            f"{cell(rec['published'])} | {cell(rec['recomputed'])} | {cell(rec['tost_p'])} | {cell(rec['status'])} | "
            f"{cell(note)} |"
        )
    counts = table["status"].value_counts().to_dict()
    lines += ["", "Status counts: " + ", ".join(f"{k}: {v}" for k, v in counts.items()), ""]
    return "\n".join(lines)


def run_reproduce(
    study: str | Path = "farpour2022",
    *,
    spec: str | Path = "default",
    out: str | Path = "outputs",
    overwrite: bool = False,
) -> ReproduceResult:
    """Write ``out/<study>/reproduce/`` (reproduce.csv, reproduce.md, manifest.json with their checksums)
    atomically; an existing folder is replaced only with ``overwrite``."""
    from bayes_stenosis.run import atomic_run_folder, check_output_folder, write_json

    loaded = load_study(study)
    model_spec, spec_sha = load_spec(spec)
    destination = check_output_folder(Path(out) / loaded.id / "reproduce", overwrite=overwrite, what="reproduce folder")
    table = reproduce_table(loaded, model_spec)
    with atomic_run_folder(destination, overwrite=overwrite, what="reproduce folder") as tmp:
        write_reproduce(tmp, loaded, model_spec, table)
        manifest = {
            **provenance(__version__),
            "kind": "reproduce",
            "study": {"id": loaded.id, "folder": str(loaded.folder), "sha256": loaded.sha256()},
            "spec": {"name": model_spec.name, "path": str(spec), "sha256": spec_sha},
        }
        write_json(tmp / "manifest.json", manifest)
    return ReproduceResult(study_id=loaded.id, folder=destination, table=table)


__all__ = [
    "COLUMNS",
    "ReproduceResult",
    "ancova_approximation",
    "one_sample",
    "reproduce_table",
    "run_reproduce",
    "tost",
    "two_sample",
    "write_reproduce",
]
