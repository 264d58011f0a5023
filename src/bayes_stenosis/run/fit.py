"""Fit a study into a run folder: validate -> prepare inputs -> build the model -> sample -> diagnose
-> decide -> write (atomically).

Files made by higher layers (the frequentist reproduction, plots, the report) are written into the
same temporary folder through callbacks, so that the run folder appears complete or not at all;
:func:`bayes_stenosis.workflow.fit` passes them.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd

from bayes_stenosis import __version__
from bayes_stenosis import decisions as dec
from bayes_stenosis.diagnostics import decision_probability_table, parameter_table, sampler_table, verdict
from bayes_stenosis.errors import ConvergenceError, InputError
from bayes_stenosis.inference import SamplerSettings, sample
from bayes_stenosis.model import build_model, prepare_inputs, prior_sampling_model, resolve_prior
from bayes_stenosis.model.terms.ipd import ipd_observed_summary, ipd_predictive_summary, missing_text
from bayes_stenosis.provenance import provenance
from bayes_stenosis.run.folder import atomic_run_folder, write_json
from bayes_stenosis.spec import ModelSpec, load_spec
from bayes_stenosis.study import Study, load_study


@dataclass
class RunResult:
    folder: Path
    decisions: pd.DataFrame
    contrasts: pd.DataFrame
    evidence: pd.DataFrame
    verdict_line: str
    verdict_status: str
    timings: dict[str, float]


def default_run_name(spec_name: str, prior_set: str, seed: int) -> str:
    return f"{spec_name}-{prior_set}-seed{seed}"


def parse_margins(items: list[str] | None) -> dict[str, float]:
    """``["ODI=8", "VAS=10"]`` -> ``{"ODI": 8.0, "VAS": 10.0}``."""
    out = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        try:
            if not sep:
                raise ValueError
            out[name.strip()] = float(value)
        except ValueError:
            raise InputError(None, f"--margin expects OUTCOME=VALUE (got {item!r})") from None
    return out


def fit(
    study: str | Path = "farpour2022",
    *,
    spec: str | Path = "default",
    prior_set: str | None = None,
    seed: int | None = None,
    chains: int | None = None,
    draws: int | None = None,
    tune: int | None = None,
    sampler: str | None = None,
    out: str | Path = "outputs",
    run_name: str | None = None,
    overwrite: bool = False,
    strict: bool = False,
    margins: dict[str, float] | None = None,
    progress: bool = True,
    status: Callable[[str], object] | None = None,
    extra_files: Callable[[Path, Study, ModelSpec], None] | None = None,
    figures: Callable[[Path], None] | None = None,
    report: Callable[[Path], None] | None = None,
) -> RunResult:
    """Fit a study and write a complete run folder ``out/<study>/<run-name>/``.

    Everything that changes results (spec, prior set, margins, sampler settings, seed, interval
    convention, decision threshold) is taken explicitly from the spec or the arguments and
    recorded in ``manifest.json``.

    Raises
    ------
    InputError
        Bad study, spec or options; raised before anything is written.
    ConvergenceError
        With ``strict=True``, when the diagnostics verdict is "fail" (the run folder is still
        written, so the failure can be inspected).

    Notes
    -----
    ``extra_files(folder, study, spec)`` runs before the manifest is written, ``figures(folder)`` and
    ``report(folder)`` after it (they read it); each gets the temporary folder of the run.
    """
    t_start = time.perf_counter()
    loaded: Study = load_study(study)
    model_spec, spec_sha = load_spec(spec)
    prior_name = prior_set or model_spec.prior.default
    settings = SamplerSettings.from_spec(
        model_spec.sampler, seed=seed, chains=chains, draws=draws, tune=tune, name=sampler
    )
    if settings.name not in ("nutpie", "pymc"):
        raise InputError(None, f"--sampler must be nutpie or pymc (got {settings.name!r})")
    inputs = prepare_inputs(loaded, model_spec, margins)
    prior = resolve_prior(model_spec, prior_name, inputs)
    usable = inputs.evidence_by_cell
    if (usable.evidence == "none").all():
        raise InputError(
            loaded.folder,
            "no usable evidence: every cell lacks arm summaries, contrasts or threshold statements "
            "(run: bayes-stenosis data validate " + str(study) + ")",
        )
    name = run_name or default_run_name(model_spec.name, prior_name, settings.seed)
    destination = Path(out) / loaded.id / name
    if destination.exists() and not overwrite:
        raise InputError(destination, "run folder already exists; choose another --out or pass --overwrite")

    timings: dict[str, float] = {"validate_and_prepare": time.perf_counter() - t_start}
    start = time.perf_counter()
    model = build_model(inputs, model_spec, prior)
    forward_model = prior_sampling_model(inputs, model_spec, prior, model)
    timings["build"] = time.perf_counter() - start
    arms = list(inputs.coords["arm"])
    reduce_replicates = None
    if inputs.ipd is not None:  # per-cell summaries instead of N x cells replicates, chunk by chunk (memory)
        reduce_replicates = functools.partial(ipd_predictive_summary, ipd=inputs.ipd, arms=arms)
    idata, sample_timings = sample(
        model,
        settings,
        progress=progress,
        status=status,
        predictive_summary=reduce_replicates,
        prior_model=forward_model,
    )
    timings.update(sample_timings)
    if inputs.ipd is not None:  # the data's summaries, to compare the replicates with
        idata.observed_data = idata.observed_data.assign(ipd_observed_summary(inputs.ipd, arms))

    start = time.perf_counter()
    params = parameter_table(idata)
    samp = sampler_table(idata)
    timings["diagnostics"] = time.perf_counter() - start

    start = time.perf_counter()
    results = decide(idata, loaded, inputs, model_spec)
    timings["decisions"] = time.perf_counter() - start
    # the verdict also covers every decision probability (R-hat / ESS of its indicator draws)
    decision_diag = decision_probability_table(
        idata.posterior["delta_natural"], results["decisions"], model_spec.decision.threshold
    )
    v = verdict(params, samp, model_spec.diagnostics, decision_diag)

    with atomic_run_folder(destination, overwrite=overwrite) as tmp:
        start = time.perf_counter()
        idata.to_netcdf(str(tmp / "posterior.nc"))
        timings["write_netcdf"] = time.perf_counter() - start
        params.to_csv(tmp / "diagnostics.csv", index=False)
        samp.to_csv(tmp / "diagnostics_sampler.csv", index=False)
        decision_diag.to_csv(tmp / "diagnostics_decisions.csv", index=False)
        from bayes_stenosis.resources import resolve_spec
        from bayes_stenosis.run.inputs import write_run_inputs

        write_run_inputs(tmp, loaded, resolve_spec(spec), inputs)
        usable.to_csv(tmp / "evidence.csv", index=False)
        if inputs.ipd is not None:  # missing follow-up values per arm x time x outcome (model_ipd.py)
            inputs.ipd.missing.to_csv(tmp / "missing_ipd.csv", index=False)
        write_results(tmp, results)
        if extra_files is not None:  # files of higher layers that the manifest and report refer to
            extra_files(tmp, loaded, model_spec)
        manifest = {
            **provenance(__version__),
            "study": {
                "id": loaded.id,
                "folder": str(loaded.folder),
                "simulated": loaded.simulated,
                "sha256": loaded.sha256(),
                "files": sorted(loaded.files),
                "title": loaded.meta.study.title,
                "citation": loaded.meta.study.citation,
                "doi": loaded.meta.study.doi,
            },
            "spec": {
                "name": model_spec.name,
                "path": str(spec),
                "sha256": spec_sha,
                "content": model_spec.model_dump(),
            },
            "prior_set": prior_name,
            "prior_on_Delta": prior.model_dump() | {"text": prior.text()},
            "reference_margin_std": float(np.min(inputs.margin_std)),
            "margins": dict(zip(inputs.coords["outcome"], inputs.margins.tolist(), strict=True)),
            "margin_overrides": margins or {},
            "units": {o: loaded.outcome(o).unit for o in inputs.coords["outcome"]},
            "scale": {
                o: {"value": float(s), "source": src}
                for o, s, src in zip(inputs.coords["outcome"], inputs.scale, inputs.scale_source, strict=True)
            },
            "arm_sizes": inputs.arm_sizes,
            "arm_size_source": inputs.arm_size_source,
            "arms": {"new": loaded.new_arm, "reference": loaded.reference_arm},
            "sampler": settings.__dict__ | {"child_seeds": settings.seeds()},
            "interval": {
                "kind": model_spec.decision.interval_kind,
                "prob": model_spec.decision.interval_prob,
            },
            "decision_rule": {
                "threshold": model_spec.decision.threshold,
                "text": results["rule_text"],
            },
            "diagnostics_verdict": {
                "status": v.status,
                "reasons": v.reasons,
                "thresholds": v.thresholds,
            },
            "evidence_by_cell": usable.to_dict("records"),
            "ipd_missing": None if inputs.ipd is None else missing_text(inputs.ipd.missing),
            "timings_seconds": timings,
        }
        write_json(tmp / "manifest.json", manifest)
        if figures is not None:
            start = time.perf_counter()
            figures(tmp)
            timings["plots"] = time.perf_counter() - start
        timings["total"] = time.perf_counter() - t_start
        manifest["timings_seconds"] = timings
        write_json(tmp / "manifest.json", manifest)
        if report is not None:
            start = time.perf_counter()
            report(tmp)
            timings["report"] = time.perf_counter() - start
            manifest["timings_seconds"] = timings
            write_json(tmp / "manifest.json", manifest)

    result = RunResult(
        folder=destination,
        decisions=results["decisions"],
        contrasts=results["contrasts"],
        evidence=usable,
        verdict_line=v.line(),
        verdict_status=v.status,
        timings=timings,
    )
    if strict and v.status == "fail":
        raise ConvergenceError(f"{v.line()}; run folder written to {destination}")
    return result


def decide(idata: az.InferenceData, study: Study, inputs, spec) -> dict:
    """Contrasts, decision table, margin curves, draws and the normal approximation."""
    interval = dec.IntervalSpec(kind=spec.decision.interval_kind, prob=spec.decision.interval_prob)
    rule = dec.DecisionRule(threshold=spec.decision.threshold)
    outcomes = inputs.coords["outcome"]
    margins = dict(zip(outcomes, inputs.margins.tolist(), strict=True))
    direction = dict(zip(outcomes, inputs.direction, strict=True))
    labels = (study.meta.arms[study.new_arm].label, study.meta.arms[study.reference_arm].label)
    delta_nat = idata.posterior["delta_natural"]
    delta_std = idata.posterior["delta"]
    prior_nat = idata.prior["delta_natural"] if "prior" in idata.groups() else None
    contrasts = dec.summarise_contrasts(delta_nat, delta_std, interval, direction, labels)
    decisions = dec.decision_table(delta_nat, margins, direction, rule, prior_delta_natural=prior_nat)
    curves = dec.margin_curves(
        delta_nat,
        margins,
        n_grid=spec.decision.margin_curve_points,
        max_multiple=spec.decision.margin_curve_max_multiple,
    )
    units = {o: study.outcome(o).unit for o in outcomes}
    approx = dec.normal_approximation(delta_nat, delta_std, margins, units)
    approx["metadata"] = {
        "study": study.id,
        "simulated": study.simulated,
        "contrast": f"{study.new_arm} minus {study.reference_arm}: change from baseline (follow-up minus baseline)",
        "new_arm": study.new_arm,
        "reference_arm": study.reference_arm,
        "direction": direction,
        "interval": {"kind": interval.kind, "prob": interval.prob},
        "package_version": __version__,
    }
    dec.validate_approximation(approx)
    draws = (
        delta_nat.to_dataframe(name="delta_natural")
        .join(delta_std.to_dataframe(name="delta_std"))
        .reset_index()[["chain", "draw", "time", "outcome", "delta_natural", "delta_std"]]
    )
    evidence = inputs.evidence_by_cell.set_index(["time", "outcome"])["evidence"]
    for frame in (contrasts, decisions):
        keys = list(zip(frame["time"], frame["outcome"], strict=True))
        frame.insert(2, "evidence", [evidence.get(k, "joint") for k in keys])
    return {
        "contrasts": contrasts,
        "decisions": decisions,
        "margin_curves": curves,
        "approximation": approx,
        "draws": draws,
        "rule_text": rule.text,
    }


def write_results(folder: Path, results: dict) -> None:
    results["contrasts"].to_csv(folder / "contrasts.csv", index=False)
    results["decisions"].to_csv(folder / "decisions.csv", index=False)
    results["margin_curves"].to_csv(folder / "margin_curves.csv", index=False)
    results["draws"].to_parquet(folder / "draws_contrasts.parquet", index=False)
    results["draws"].to_csv(folder / "draws_contrasts.csv", index=False)
    write_json(folder / "approximations.json", results["approximation"])
