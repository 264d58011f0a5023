"""A synthesis folder, published like every run folder (:func:`bayes_stenosis.run.atomic_run_folder`:
lock, temporary folder, checksums in the manifest written last, atomic rename):

``synthesis.json`` (everything, with the priors, margin, scale and each input's hashes), ``synthesis.csv``
(one row per study, pooled effect, new study, tau), ``forest.png``, ``report.md`` (the report section),
``posterior.nc`` and ``diagnostics.csv`` (independent draws from the grid posterior and their summary) and
``manifest.json`` (kind ``synthesis``, the command line, the input runs with the SHA-256 of their manifest
and ``approximations.json``, and the checksums of every file).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bayes_stenosis import __version__
from bayes_stenosis.analyses.synthesis.combine import Synthesis, synthesize
from bayes_stenosis.analyses.synthesis.draws import posterior_draws, resampled_draws
from bayes_stenosis.analyses.synthesis.figure import forest_panels, forest_plot
from bayes_stenosis.analyses.synthesis.joint import MultivariateSynthesis, synthesize_multivariate
from bayes_stenosis.diagnostics import parameter_table
from bayes_stenosis.errors import SynthesisError
from bayes_stenosis.provenance import provenance
from bayes_stenosis.run import atomic_run_folder, check_output_folder, write_json

__all__ = ["SynthesisResult", "multivariate_report", "report_section", "run_synthesis"]


@dataclass
class SynthesisResult:
    folder: Path
    synthesis: Synthesis | MultivariateSynthesis


#: The seed of the posterior draws of ``posterior.nc`` when none is given (the numbers of synthesis.json
#: come from the grid and do not depend on it).
DEFAULT_SEED = 20261207


def run_synthesis(
    runs: Sequence[str | Path],
    out: str | Path,
    *,
    overwrite: bool = False,
    seed: int = DEFAULT_SEED,
    **options,
) -> SynthesisResult:
    """Synthesise (:func:`~.combine.synthesize`, ``options`` passed on) and publish the folder ``out``,
    with ``posterior.nc`` (independent draws from the grid posterior, from ``seed``) and ``diagnostics.csv``
    (their summary) so that it reads like every run folder.

    With ``joint_cells`` (a list of ``(outcome, time)``) the synthesis is multivariate over those cells
    (:func:`~.joint.synthesize_multivariate`, which takes ``between_correlation`` too; its joint probabilities
    come from draws of ``seed``), written in the same folder layout.

    The output path is checked before any work; an existing folder is replaced only with ``overwrite``.
    """
    destination = check_output_folder(Path(out), overwrite=overwrite, what="synthesis folder")
    joint = options.pop("joint_cells", None)
    if joint:
        return _run_multivariate(runs, joint, destination, overwrite=overwrite, seed=seed, options=options)
    synthesis = synthesize(runs, **options)
    with atomic_run_folder(destination, overwrite=overwrite, what="synthesis folder") as tmp:
        record = synthesis.record()
        write_json(tmp / "synthesis.json", record)
        synthesis.table().to_csv(tmp / "synthesis.csv", index=False)
        forest_plot(synthesis, tmp / "forest.png")
        (tmp / "report.md").write_text(report_section(synthesis))
        idata = posterior_draws(
            synthesis.grid,
            [s.likelihood(synthesis.scale_key) for s in synthesis.studies],
            [s.study for s in synthesis.studies],
            seed=seed,
            unit=synthesis.unit,
        )
        idata.to_netcdf(str(tmp / "posterior.nc"))
        parameter_table(idata).to_csv(tmp / "diagnostics.csv", index=False)
        write_json(tmp / "manifest.json", _manifest(synthesis, options | {"seed": seed}))
    return SynthesisResult(folder=destination, synthesis=synthesis)


def _run_multivariate(runs, cells, destination: Path, *, overwrite: bool, seed: int, options: dict) -> SynthesisResult:
    for key in ("outcome", "time", "cells"):
        if options.pop(key, None):
            raise SynthesisError(
                None, f"--cells (a multivariate synthesis) cannot be combined with --{key.rstrip('s')}"
            )
    synthesis = synthesize_multivariate(runs, cells, seed=seed, **options)
    with atomic_run_folder(destination, overwrite=overwrite, what="synthesis folder") as tmp:
        write_json(tmp / "synthesis.json", synthesis.record())
        synthesis.table().to_csv(tmp / "synthesis.csv", index=False)
        forest_panels(synthesis, tmp / "forest.png")
        (tmp / "report.md").write_text(multivariate_report(synthesis))
        idata = resampled_draws(synthesis.draws, synthesis.weights, synthesis.labels, seed=seed, unit=synthesis.unit)
        idata.to_netcdf(str(tmp / "posterior.nc"))
        parameter_table(idata).to_csv(tmp / "diagnostics.csv", index=False)
        write_json(tmp / "manifest.json", _mv_manifest(synthesis, options | {"joint_cells": cells, "seed": seed}))
    return SynthesisResult(folder=destination, synthesis=synthesis)


def _mv_manifest(synthesis: MultivariateSynthesis, options: dict) -> dict:
    rec = synthesis.record()
    return {
        **provenance(__version__),
        "kind": "synthesis",
        "multivariate": True,
        "cells": rec["cells"],
        "inputs": [
            {"study": g[0].study, "run": str(g[0].run), "cells": s["cells"], **g[0].hashes}
            for g, s in zip(synthesis.inputs, rec["studies"], strict=True)
        ],
        "options": {
            k: (v if isinstance(v, int | float | str | bool | dict | list | None) else str(v))
            for k, v in options.items()
        },
        "likelihood_choice": rec["likelihood_choice"],
        "scale": rec["scale"],
        "margins": rec["margins"],
        "priors": rec["priors"],
        "engine": rec["engine"],
        "seed": options.get("seed"),
    }


def multivariate_report(synthesis: MultivariateSynthesis) -> str:
    """``report.md`` of a multivariate synthesis: the joint answer first, then one row per cell."""
    rec = synthesis.record()
    joint, tau, r = rec["joint_prob_equivalence"], rec["tau"], rec["r"]
    k = len(synthesis.cells)
    lines = [
        f"# Multivariate synthesis: {rec['comparison']}",
        "",
        f"Cells: {', '.join(rec['cells'])}. "
        f"P(every pooled effect inside its margin) = **{joint['pooled']['prob']:.3f}** "
        f"(MCSE {joint['pooled']['mcse']:.4f}); P(every effect of a new study inside) = "
        f"**{joint['new_study']['prob']:.3f}** (MCSE {joint['new_study']['mcse']:.4f}).",
        "",
        f"Model: {rec['model']}. Scale: {synthesis.scale} ({synthesis.unit}).",
        f"Priors: {synthesis.mu_prior.text()} per cell ({synthesis.mu_prior.source}); {synthesis.tau_prior.text()} "
        f"({synthesis.tau_prior.source}); {synthesis.r_prior.text(k)} ({rec['priors']['r']['source']}).",
        f"Engine: {rec['engine']['route']}; {rec['engine']['draws']} draws (effective "
        f"{rec['engine']['effective_draws']:.0f}, seed {rec['engine']['seed']}).",
        "",
        "| cell | margin | pooled mean (95 % interval) | P(inside) | new study (95 % prediction) | P(inside) |",
        "|---|---|---|---|---|---|",
    ]
    for lab, m, cell in zip(rec["cells"], rec["margins"], rec["pooled_by_cell"].values(), strict=True):
        lines.append(
            f"| {lab} | {m['value']:.3g} | {_fmt_interval(cell['pooled'])} | {cell['pooled']['prob_equivalence']:.3f} "
            f"| {_fmt_interval(cell['new_study'])} | {cell['new_study']['prob_equivalence']:.3f} |"
        )
    lines += [
        "",
        f"tau (between-study SD): median {tau['median']:.3f} ({tau['interval_low']:.3f} to {tau['interval_high']:.3f})"
        + (f"; r: median {r['median']:.3f} ({r['interval_low']:.3f} to {r['interval_high']:.3f})" if r else "")
        + ".",
        "",
        "Each study enters through its run's joint likelihood over the cells it has (the run's prior divided "
        "out), never its posterior.",
        "",
        *[f"- {note}" for note in rec["notes"]],
        *[f"- margin {m['cell']}: {m['source']}" for m in rec["margins"]],
        "",
        "![forest plot, one panel per cell](forest.png)",
        "",
    ]
    return "\n".join(lines)


def _manifest(synthesis: Synthesis, options: dict) -> dict:
    rec = synthesis.record()
    return {
        **provenance(__version__),
        "kind": "synthesis",
        "inputs": [
            {"study": s.study, "run": str(s.run), "cell": {"time": s.time, "outcome": s.outcome}, **s.hashes}
            for s in synthesis.studies
        ],
        "options": {
            k: (v if isinstance(v, int | float | str | bool | dict | list | None) else str(v))
            for k, v in options.items()
        },
        "likelihood_choice": rec["likelihood_choice"],
        "scale": rec["scale"],
        "margin": rec["margin"],
        "priors": rec["priors"],
        "engine": "numerical integration on a (tau, mu) grid (analyses/synthesis/engine.py): deterministic; the "
        "seed drives only the draws of posterior.nc",
        "seed": options.get("seed"),
        "grid": rec["grid"],
    }


def _fmt_interval(rec: dict) -> str:
    return f"{rec['mean']:.3f} ({rec['interval_low']:.3f} to {rec['interval_high']:.3f})"


def report_section(synthesis: Synthesis) -> str:
    """``report.md``: the synthesis in words and one table, the answer first."""
    rec = synthesis.record()
    pooled, new, tau = rec["pooled"], rec["new_study"], rec["tau"]
    prior = rec["prior_prob_equivalence"]
    unit = synthesis.unit
    lines = [
        f"# Synthesis: {rec['comparison']}",
        "",
        f"P(|pooled effect| < {synthesis.margin:.3g} {unit}) = **{pooled['prob_equivalence']:.3f}** "
        f"(prior {prior['pooled']:.3f}); P(|a new study's effect| < {synthesis.margin:.3g}) = "
        f"**{new['prob_equivalence']:.3f}** (prior {prior['new_study']:.3f}).",
        "",
        f"Scale: {synthesis.scale} ({unit}). Margin: {synthesis.margin:.4g} ({synthesis.margin_source}).",
        f"Priors: {synthesis.mu_prior.text()} ({synthesis.mu_prior.source}); {synthesis.tau_prior.text()} "
        f"({synthesis.tau_prior.source}).",
        "",
        "| row | likelihood (mean, SD) | posterior mean (95 % interval) | P(inside margin) |",
        "|---|---|---|---|",
    ]
    for s in rec["studies"]:
        lik = s["likelihood"]
        lines.append(
            f"| {s['study']} ({s['cell']['outcome']}, week {s['cell']['time']:g}; {lik['method'].replace('_', ' ')}) "
            f"| {lik['mean']:.3f}, {lik['sd']:.3f} | {_fmt_interval(s['shrunken'])} "
            f"| {s['shrunken']['prob_equivalence']:.3f} |"
        )
    lines += [
        f"| pooled effect | | {_fmt_interval(pooled)} | {pooled['prob_equivalence']:.3f} |",
        f"| new study (prediction) | | {_fmt_interval(new)} | {new['prob_equivalence']:.3f} |",
        f"| tau (between-study SD) | | median {tau['median']:.3f} ({tau['interval_low']:.3f} to "
        f"{tau['interval_high']:.3f}) | |",
        "",
        "Each study enters through its run's likelihood (the run's prior divided out, or its posterior draws "
        "reweighted by that prior), never its posterior: no prior is counted twice.",
        "",
        *[f"- {note}" for note in rec["notes"]],
        *[
            f"- {s['study']}: " + "; ".join(s["likelihood"]["notes"])
            for s in rec["studies"]
            if s["likelihood"]["notes"]
        ],
        "",
        "![forest plot](forest.png)",
        "",
    ]
    return "\n".join(lines)
