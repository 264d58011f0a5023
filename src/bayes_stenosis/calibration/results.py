"""SBC run folders: what a run writes per case, its summary, and reading a finished run back.

A run folder holds, per case (and wrong-likelihood variant) labelled by :func:`run_label`,
``<label>_ranks.csv`` (the rank of every truth), ``<label>_tests.csv`` (the chi-square per quantity) and
``<label>_ranks.png`` (the rank histograms), and ``sbc_summary.json`` (mode, settings, seed, commit and
one entry per result). :func:`load_results` rebuilds the results from the saved ranks alone.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from bayes_stenosis.calibration.cases import Mode
from bayes_stenosis.calibration.ranks import SBCResult, run_label, uniformity

ALPHA = 0.001  # the family-wise level of each case's uniformity test


def summary_entry(res: SBCResult) -> dict:
    """One result's entry in ``sbc_summary.json``."""
    return {
        "case": res.case,
        "wrong": res.wrong,
        "passed": res.passed,
        "replicates": int(res.tests["replicates"].max()),
        "quantities": len(res.tests),
        "min_p": float(res.tests["p_value"].min()),
        "bonferroni_level": res.threshold,
        "p_values": dict(zip(res.tests["quantity"], res.tests["p_value"].round(4), strict=True)),
        "share_ess_below_L": float(res.tests["share_ess_below_L"].max()),
        "divergent_fits": res.divergent_fits,
        "patterns": res.patterns,
        "seconds": round(res.seconds, 1),
        "compile_seconds": round(res.compile_seconds, 1),
        "compiles": res.compiles,
    }


def write_result(res: SBCResult, out: Path) -> None:
    """A result's ranks, tests and rank histograms in the run folder ``out``."""
    res.ranks.to_csv(out / f"{res.label}_ranks.csv", index=False)
    res.tests.to_csv(out / f"{res.label}_tests.csv", index=False)
    plot_ranks(res, out / f"{res.label}_ranks.png")


def write_summary(out: Path, mode_name: str, mode: Mode, seed: int, commit: str, entries: list[dict]) -> None:
    """``sbc_summary.json``: the run's settings and one entry per result so far."""
    summary = {
        "mode": mode_name,
        "settings": dataclasses.asdict(mode),
        "seed": seed,
        "commit": commit,
        "alpha": ALPHA,
        "results": entries,
    }
    (out / "sbc_summary.json").write_text(json.dumps(summary, indent=2))


def load_results(folder: Path) -> list[SBCResult]:
    """The results of a finished SBC run, rebuilt from its saved ranks (uniformity recomputed, no refitting)."""
    summary = json.loads((folder / "sbc_summary.json").read_text())
    keep, bins = summary["settings"]["thin_to"], summary["settings"]["bins"]
    results = []
    for res in summary["results"]:
        ranks = pd.read_csv(folder / f"{run_label(res['case'], res['wrong'])}_ranks.csv")
        results.append(
            SBCResult(
                case=res["case"],
                mode=summary["mode"],
                wrong=res["wrong"],
                ranks=ranks,
                tests=uniformity(ranks, keep, bins),
                alpha=summary["alpha"],
                keep=keep,
                bins=bins,
                seconds=res["seconds"],
                compile_seconds=res["compile_seconds"],
                divergent_fits=res["divergent_fits"],
                patterns=res.get("patterns", {}),
                compiles=res.get("compiles"),
            )
        )
    return results


def plot_ranks(result: SBCResult, path: Path) -> Path:
    """Rank histograms with the 99 % band of a bin count under uniformity (Talts et al. Fig. 3)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tests = result.tests
    k = len(tests)
    ncol = min(4, k)
    nrow = math.ceil(k / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(max(3.2 * ncol, 7.0), 2.5 * nrow + 0.4), squeeze=False)
    for ax, (_, row) in zip(axes.ravel(), tests.iterrows(), strict=False):
        counts = np.asarray(row["counts"])
        n = counts.sum()
        lo, hi = stats.binom.ppf([0.005, 0.995], n, 1 / result.bins)
        ax.axhspan(lo, hi, color="0.85", zorder=0)
        ax.axhline(n / result.bins, color="0.5", lw=0.8)
        ax.bar(np.arange(result.bins), counts, width=0.9, color="tab:blue", zorder=1)
        ax.set_title(f"{row['quantity']}\np = {row['p_value']:.2g}", fontsize=8)
        ax.set_xticks([])
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[k:]:
        ax.axis("off")
    wrong = f", WRONG likelihood ({result.wrong})" if result.wrong else ""
    height = fig.get_figheight()  # the title keeps ~0.4 inch above the top row, however many rows
    fig.suptitle(
        f"SBC ranks: {result.case}{wrong}; {int(tests['replicates'].max())} replicates, L = {result.keep}, "
        f"grey = 99 % band per bin",
        fontsize=9,
        y=1 - 0.1 / height,
    )
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.4 / height))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def replot(folder: Path) -> list[Path]:
    """Redraw every rank histogram of a finished SBC run from its saved ranks (no refitting)."""
    return [plot_ranks(result, folder / f"{result.label}_ranks.png") for result in load_results(folder)]
