"""The predictive checks of a run folder (``plots/ppc.png``, ``plots/prior_predictive.png``): each observed
summary against its replicates under the posterior or the prior, in natural units, and each threshold
statement as an event; with the labels that put the model's observed quantities in natural units."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import arviz as az  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import xarray as xr  # noqa: E402

from bayes_stenosis.outputs.headline import arm_difference  # noqa: E402


def to_natural_units(values: np.ndarray, transform: str, scale: float) -> np.ndarray:
    """Model-scale values in natural units: ``sqrt(values) x scale`` for the ``"sqrt"`` transform (a
    variance back to an SD), else ``values x scale``."""
    if transform == "sqrt":
        return np.sqrt(np.clip(values, 0, None)) * scale
    return values * scale


def item_labels(variable: str, n: int, labels: pd.DataFrame | None, coord_values) -> list[dict]:
    """Per element of ``variable``: label, transform, scale, unit (generic when not described)."""
    generic = [
        {"label": f"{variable}[{c}]", "transform": "identity", "scale": 1.0, "unit": "", "statistic": variable}
        for c in coord_values
    ]
    if labels is None:
        return generic
    rows = labels[labels["variable"] == variable]
    if variable == "threshold_event" and len(rows):
        by_row = rows.set_index("source_row")
        out = []
        for c, g in zip(coord_values, generic, strict=True):
            out.append(by_row.loc[int(c)].to_dict() if int(c) in by_row.index else g)
        return out
    if len(rows) != n:
        return generic
    return rows.sort_values("index").to_dict("records")


def predictive_content(idata: az.InferenceData, group: str = "posterior_predictive") -> tuple[list[str], bool]:
    """What :func:`predictive_check` draws for ``group``: the continuous observed quantities (mean changes
    and reported differences first, then SDs) and whether there are threshold statements (events)."""
    pred = getattr(idata, group, None) if group in idata.groups() else None
    observed = idata.observed_data if "observed_data" in idata.groups() else None
    continuous = []
    if pred is not None and observed is not None:
        continuous = [v for v in pred.data_vars if v != "threshold_event" and v in observed]
        # mean changes and reported differences first (what decisions rest on), then SDs
        continuous.sort(key=lambda v: (0 if "mean_change" in v or "contrast" in v else 1, v))
    source = "posterior" if group == "posterior_predictive" else "prior"
    has_events = source in idata.groups() and "threshold_log_prob" in getattr(idata, source)
    return continuous, has_events


def predictive_check(
    idata: az.InferenceData,
    labels: pd.DataFrame | None,
    manifest: dict,
    path: Path,
    group: str = "posterior_predictive",
) -> Path | None:
    """Observed summary vs its replicates, for every observed quantity, in natural units.

    Continuous quantities (mean changes, SDs, reported differences): one row per element, the
    replicates' 50 % and 95 % central intervals (bars) and the observed value (red diamond).
    Threshold statements are events: the replicate is Bernoulli(P(event)), the observed value is 1,
    so the panel shows P(event | parameters) averaged over the posterior (and over the prior, grey)
    per statement; a statement the model finds improbable is a misfit.
    """
    continuous, has_events = predictive_content(idata, group)
    source = "posterior" if group == "posterior_predictive" else "prior"
    if not continuous and not has_events:
        return None
    panels = []  # (title, kind, payload)
    for var in continuous:
        panels += _replicate_panels(var, getattr(idata, group)[var], idata.observed_data[var], labels)
    if has_events:
        panels.append(_statement_panel(idata, source, labels))
    heights = [max(1.6, 0.28 * (len(p[2][0]) + 2)) for p in panels]
    fig, axes = plt.subplots(
        len(panels), 1, figsize=(11, sum(heights) + 0.8), squeeze=False, gridspec_kw={"height_ratios": heights}
    )
    for ax, (title, kind, payload) in zip(axes[:, 0], panels, strict=True):
        _draw_panel(ax, title, kind, payload, source)
    what = "Posterior" if source == "posterior" else "Prior"
    scale = "natural units" if continuous else "threshold statements as events"
    fig.suptitle(f"{what} predictive check: observed vs replicated ({arm_difference(manifest)}; {scale})")
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.45 / (sum(heights) + 0.8)))
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _replicate_panels(var: str, rep: xr.DataArray, observed: xr.DataArray, labels: pd.DataFrame | None) -> list:
    """The panels of one continuous observed variable: one per statistic and arm (a patient-level summary
    holds both arms in one variable), each ``(title, "continuous", (names, replicates, observed))`` in
    natural units."""
    obs = observed.values.ravel()
    sample = rep.stack(sample=("chain", "draw")).transpose("sample", ...).values.reshape(-1, obs.size)
    items = item_labels(var, obs.size, labels, list(range(obs.size)))
    by_stat: dict[tuple[str, str], list[int]] = {}
    for i, it in enumerate(items):
        stat = f"{it.get('statistic', var)} ({it.get('unit') or 'natural units'})"
        arm = it.get("arm", "")
        by_stat.setdefault((stat, arm if isinstance(arm, str) else ""), []).append(i)
    panels = []
    for (stat, arm), idx in by_stat.items():
        nat_rep = np.column_stack(
            [to_natural_units(sample[:, i], items[i]["transform"], items[i]["scale"]) for i in idx]
        )
        nat_obs = np.array([to_natural_units(obs[i], items[i]["transform"], items[i]["scale"]) for i in idx])
        title = f"{arm}: {stat}" if arm else f"{var.removeprefix('obs_')}: {stat}"
        names = [str(items[i]["label"]).split(": ", 1)[-1] for i in idx]
        panels.append((title, "continuous", (names, nat_rep, nat_obs)))
    return panels


def _statement_panel(idata: az.InferenceData, source: str, labels: pd.DataFrame | None) -> tuple:
    """The threshold statements' panel, ``(title, "event", (names, P(event), P(event) under the prior))``:
    the probability that a replicated trial reports each statement, averaged over ``source`` (and over the
    prior too when ``source`` is the posterior)."""
    lp = getattr(idata, source)["threshold_log_prob"]
    rows = lp.coords["threshold_row"].values
    prob = np.exp(lp).mean(("chain", "draw")).values
    prior_prob = None
    if source == "posterior" and "prior" in idata.groups() and "threshold_log_prob" in idata.prior:
        prior_prob = np.exp(idata.prior["threshold_log_prob"]).mean(("chain", "draw")).values
    items = item_labels("threshold_event", len(rows), labels, rows)
    return ("threshold statements", "event", ([str(it["label"]) for it in items], prob, prior_prob))


def _draw_panel(ax, title: str, kind: str, payload: tuple, source: str) -> None:
    """One panel, a row per element: the replicates' 95 % and 50 % intervals and the observed value
    (``"continuous"``), or each statement's probability of being reported (``"event"``)."""
    names = payload[0]
    y = np.arange(len(names))[::-1]
    if kind == "continuous":
        _, rep, obs = payload
        q = np.nanquantile(rep, [0.025, 0.25, 0.5, 0.75, 0.975], axis=0)
        ax.hlines(y, q[0], q[4], color="tab:blue", lw=1.5, label="replicates 95 %")
        ax.hlines(y, q[1], q[3], color="tab:blue", lw=5, alpha=0.6, label="replicates 50 %")
        ax.plot(obs, y, "D", color="tab:red", ms=5, label="observed")
        ax.set_xlabel(title.split(": ", 1)[-1])
    else:
        _, prob, prior_prob = payload
        ax.barh(y, prob, height=0.6, color="tab:blue", alpha=0.8, label=f"P(event), {source}")
        if prior_prob is not None:
            ax.plot(prior_prob, y, "|", color="k", ms=12, mew=2, label="P(event), prior")
        ax.axvline(1.0, color="tab:red", lw=1, label="observed: event reported (1)")
        ax.set_xlim(0, 1.05)
        ax.set_xlabel("probability that a replicated trial reports the statement")
    ax.set_yticks(y, names, fontsize=9)
    ax.set_title(title, loc="left")
    # above the panel, right of its title: outside the axes to the right it took a quarter of the width
    columns = 3 if kind == "continuous" else 2  # two rows beside the statements panel's title
    ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=columns, fontsize=8, frameon=False, borderaxespad=0.2)
    ax.grid(axis="x", alpha=0.3)
