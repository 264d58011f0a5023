"""Whether a recomputed test agrees with a published one, within the rounding of the printed numbers.

Entered numbers are rounded as printed, so a recomputed p is an interval: the test is evaluated at
the corners of the rounding box (each mean, SD, estimate or CI limit +- half a unit of its last
decimal; numbers printed together, a mean and its SD or an estimate and its CI, share the most
decimals found among them, since the loader does not keep trailing zeros). A published exact p is
an interval too (+- half a unit of its last printed decimal). "consistent" = the intervals overlap;
"P>alpha" is consistent when the recomputed interval reaches above alpha; "P<alpha" when it reaches
below alpha with the difference in the stated direction.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "common_halves",
    "compare_threshold",
    "decimals",
    "explain_mismatch",
    "half_unit",
    "intervals_overlap",
    "p_interval",
    "published_text",
]


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


def intervals_overlap(lo1, hi1, lo2, hi2) -> bool:
    return lo1 <= hi2 and lo2 <= hi1


def published_text(rec: dict) -> str:
    """A thresholds.csv row as printed: "P>0.05 (p=0.46), favours_new"."""
    p = rec.get("p_value")
    text = f"P{rec['relation']}{rec['alpha']:g}"
    if p is not None and np.isfinite(p):
        text += f" (p={p:g})"
    if rec.get("direction"):
        text += f", {rec['direction']}"
    return text


def compare_threshold(rec: dict, p_lo: float, p_hi: float, estimate: float, new_better_sign: float) -> tuple:
    """Status and tolerance text of a recomputed p interval against a threshold row."""
    alpha = rec["alpha"]
    p = rec.get("p_value")
    if p is not None and np.isfinite(p):
        h = half_unit(p)
        ok = intervals_overlap(p_lo, p_hi, p - h, p + h)
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


def explain_mismatch(status: str, rec: dict, res: dict) -> str:
    """The note of an inconsistent row: what to check in the entered data."""
    if status == "consistent":
        return ""
    return (
        f"the entered data give p={res['p']:.3g} against the published {published_text(rec)}: check SD vs SE "
        "(an SE entered as an SD makes the test sqrt(n) times weaker), the test used (change vs follow-up, "
        "pooled vs Welch, paired) and the transcription"
    )
