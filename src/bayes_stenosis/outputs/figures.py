"""The report's figures: each plot of ``RUN/plots`` with a caption that says what the plot shows (what
it draws depends on the evidence: replicated summaries or threshold statements) and alt text that
carries its message for a reader who cannot see it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bayes_stenosis.outputs.headline import decimals_for, interval_label
from bayes_stenosis.outputs.plots import GROUP_UNITS
from bayes_stenosis.outputs.predictive import predictive_content
from bayes_stenosis.outputs.tables import png_data_uri

ENERGY_CAPTION = (
    "Energy plot: the marginal energy and the energy-transition distributions should have similar widths; "
    "E-BFMI per chain in the legend (< 0.3 suggests poor exploration)."
)


def figure(plots: Path, name: str, caption: str, alt: str) -> dict | None:
    """``{"name", "src", "caption", "alt"}`` for the template; None when the run has no such plot."""
    path = plots / name
    if not path.is_file():
        return None
    return {"name": name, "src": png_data_uri(path), "caption": caption, "alt": alt}


def predictive_caption(idata, group: str) -> str:
    """What the predictive-check plot of ``group`` draws, in words."""
    continuous, events = predictive_content(idata, group)
    source = "posterior" if group == "posterior_predictive" else "prior"
    parts = []
    if continuous:
        parts.append(
            f"each observed summary (red diamond) against its replicates drawn from the {source} (blue bars: "
            "their central 50 % (thick) and 95 % (thin) intervals), natural units"
        )
    if events:
        tick = "; black tick: the same under the prior" if source == "posterior" else ""
        parts.append(
            'each threshold statement ("P<0.05" / "P>0.05") is an event: the blue bar is the probability, '
            f"under the {source}, that a replicated trial reports it (it was reported: red line at 1){tick}"
        )
    what = "Posterior" if source == "posterior" else "Prior"
    return f"{what} predictive check: " + "; ".join(parts) + "."


def forest_alt(contrasts: pd.DataFrame, decisions: pd.DataFrame, manifest: dict) -> str:
    """The forest plot's message in words: every cell's mean, interval, margin and P(equiv)."""
    units, interval = manifest.get("units", {}), interval_label(manifest)
    cells = decisions[decisions["scope"] == "cell"].set_index(["time", "outcome"])
    parts = []
    for rec in contrasts.to_dict("records"):
        m = manifest["margins"].get(rec["outcome"], float("nan"))
        d = decimals_for(m)
        p = cells["prob_equivalence"].get((rec["time"], rec["outcome"]), float("nan"))
        parts.append(
            f"{rec['outcome']} week {rec['time']:g}: {rec['mean_natural']:.{d}f} "
            f"({rec['lower_natural']:.{d}f} to {rec['upper_natural']:.{d}f}) {units.get(rec['outcome'], '')}, "
            f"margin ±{m:g}, P(equiv) {p:.3f}"
        )
    arms = manifest["arms"]
    return (
        f"Forest plot of the treatment difference, {arms['new']} minus {arms['reference']}, posterior mean and "
        f"{interval} per outcome and week: " + "; ".join(parts) + "."
    )


def figure_captions(plots: Path, manifest: dict, idata, contrasts: pd.DataFrame, decisions: pd.DataFrame) -> dict:
    """Every figure of the report with its caption and alt text (keys of the template)."""
    energy = figure(plots, "energy.png", ENERGY_CAPTION, "Energy distributions of the sampler, per chain.")
    return {
        "prior_predictive_img": figure(
            plots,
            "prior_predictive.png",
            predictive_caption(idata, "prior_predictive"),
            "Prior predictive check: what the model expects the trial to report before seeing its data.",
        ),
        "prior_posterior_img": _prior_posterior_figure(plots, manifest),
        "computation_imgs": [f for f in (energy, *_trace_and_rank_figures(plots)) if f],
        "ppc_img": figure(
            plots,
            "ppc.png",
            predictive_caption(idata, "posterior_predictive"),
            "Posterior predictive check: what a replicated trial would report under the posterior, against what "
            "this trial reported.",
        ),
        "forest_img": figure(
            plots,
            "forest.png",
            f"Posterior mean (dot) and {interval_label(manifest)} (line) of each treatment difference, natural units; "
            "green band: the equivalence margin; P(equiv) written beside each interval.",
            forest_alt(contrasts, decisions, manifest),
        ),
        "margin_img": _margin_curves_figure(plots, manifest),
        "posterior_margin_img": _posterior_margin_figure(plots, manifest, decisions),
    }


def _trace_and_rank_figures(plots: Path) -> list[dict | None]:
    """The trace and the rank plot of each parameter group drawn, in the order of their file names."""
    figures = []
    for path in sorted(plots.glob("trace_*.png")):
        group = path.stem.removeprefix("trace_")
        pretty = group.replace("_", " ")
        units = GROUP_UNITS.get(group, "")
        figures.append(
            figure(
                plots,
                path.name,
                f"Trace ({pretty}; {units}), every cell of a parameter in one panel: left, per-chain densities "
                "(should overlap); right, draws in order (should look like stationary noise, chains mixed).",
                f"Compact trace plots of the {pretty} parameters, one row per parameter: chain densities and draws "
                "in order.",
            )
        )
        figures.append(
            figure(
                plots,
                f"rank_{group}.png",
                f"Rank plots ({pretty}), one panel per parameter cell: each chain's count of draws per rank bin, "
                "as its deviation from the uniform count (dashed line); chains that agree scatter evenly around it.",
                f"Rank plots of the {pretty} parameters per chain, as deviations from uniform.",
            )
        )
    return figures


def _prior_posterior_figure(plots: Path, manifest: dict) -> dict | None:
    """The prior and posterior densities, captioned with the number of prior draws they come from."""
    n_prior = int(manifest["sampler"].get("prior_draws_decisions", 0))
    prior_source = f"{n_prior:,} prior draws" if n_prior else "the prior draws"
    return figure(
        plots,
        "prior_posterior.png",
        f"Prior (grey line: smooth density of {prior_source}) and posterior (blue) of each treatment "
        "difference, natural units, one panel per outcome and week; green band: the equivalence margin. "
        "Where the two curves are alike the data said little.",
        "Prior and posterior densities of the treatment difference per outcome and week, with the margin band.",
    )


def _margin_curves_figure(plots: Path, manifest: dict) -> dict | None:
    """The margin curves, captioned with the decision threshold."""
    threshold = manifest["decision_rule"]["threshold"]
    return figure(
        plots,
        "margin_curves.png",
        "Margin curves: posterior probability that |δ| is below a margin m, as m varies from 0 to twice the "
        "study's margin (black dashed line); one line style and marker per follow-up week; red dotted line: "
        f"the decision threshold {threshold:g}.",
        "Posterior probability of equivalence against the margin, per outcome and week.",
    )


def _posterior_margin_figure(plots: Path, manifest: dict, decisions: pd.DataFrame) -> dict | None:
    """The posterior with its margin and the line at 0 (ArviZ ``plot_posterior(rope=margin, ref_val=0)``),
    its alt text every cell's P(equiv) and P(new arm better)."""
    arms, interval = manifest["arms"], interval_label(manifest)
    cells = decisions[decisions["scope"] == "cell"]
    parts = [
        f"{rec['outcome']} week {rec['time']:g}: P(equiv) {rec['prob_equivalence']:.3f}, "
        f"P({arms['new']} better) {rec['prob_superiority']:.3f}"
        for rec in cells.to_dict("records")
    ]
    return figure(
        plots,
        "posterior_margin.png",
        f"Posterior density of each treatment difference ({arms['new']} minus {arms['reference']}), natural units, "
        f"with its mean (panel title) and {interval} (black bar); green band: the equivalence margin, with "
        f"P(equiv) = the posterior share inside it; orange line: no difference, with P({arms['new']} better) = "
        "the share on its side. As ArviZ's plot_posterior(rope=margin, ref_val=0), in the run's interval convention.",
        "Posterior of the treatment difference per outcome and week against the margin and zero: "
        + "; ".join(parts)
        + ".",
    )
