"""``manifest.json``: what a run is (study, spec, prior, margins, sampler, seed, rule, verdict,
provenance), written from a :class:`~bayes_stenosis.run.fit.Fit`."""

from __future__ import annotations

import numpy as np

from bayes_stenosis import __version__
from bayes_stenosis.model import reference_change_unpooled, statement_dependence, threshold_design
from bayes_stenosis.model.terms.ipd import missing_text
from bayes_stenosis.provenance import provenance
from bayes_stenosis.run.fit import Fit

#: Manifest schema version: bump when a key is renamed or removed (the report and reader use them).
MANIFEST_SCHEMA = 1


def run_manifest(fit: Fit, timings: dict[str, float]) -> dict:
    """The manifest of a run: every setting that changes its numbers, and where they came from."""
    study, spec, inputs = fit.study, fit.spec, fit.inputs
    outcomes = inputs.coords["outcome"]
    v = fit.verdict
    return {
        **provenance(__version__),
        "manifest_schema": MANIFEST_SCHEMA,
        "study": {
            "id": study.id,
            "folder": str(study.folder),
            "simulated": study.simulated,
            "sha256": study.sha256(),
            "files": sorted(study.files),
            "title": study.meta.study.title,
            "citation": study.meta.study.citation,
            "doi": study.meta.study.doi,
        },
        "spec": {
            "name": spec.name,
            "path": str(fit.spec_path) if fit.spec_path is not None else "(in memory)",
            "sha256": fit.spec_sha256,
            "content": spec.model_dump(),
        },
        "prior_set": fit.prior_set,
        "prior_on_Delta": fit.prior.model_dump() | {"text": fit.prior.text()},
        "reference_margin_std": float(np.min(inputs.margin_std)),
        "margins": dict(zip(outcomes, inputs.margins.tolist(), strict=True)),
        "margin_overrides": fit.margin_overrides,
        "units": {o: study.outcome(o).unit for o in outcomes},
        "scale": {
            o: {"value": float(s), "source": src}
            for o, s, src in zip(outcomes, inputs.scale, inputs.scale_source, strict=True)
        },
        "arm_sizes": inputs.arm_sizes,
        "arm_size_source": inputs.arm_size_source,
        "arms": {"new": study.new_arm, "reference": study.reference_arm},
        "sampler": fit.settings.__dict__
        | {"child_seeds": fit.settings.seeds(), "compile_cache": fit.idata.posterior.attrs.get("compile_cache")},
        "interval": {"kind": spec.decision.interval_kind, "prob": spec.decision.interval_prob},
        "decision_rule": {"threshold": spec.decision.threshold, "text": fit.results.rule_text},
        "diagnostics_verdict": {"status": v.status, "reasons": v.reasons, "thresholds": v.thresholds},
        "evidence_by_cell": inputs.evidence_by_cell.to_dict("records"),
        "ipd_missing": None if inputs.ipd is None else missing_text(inputs.ipd.missing),
        # how the threshold statements entered the likelihood: one joint event or the per-statement path
        "threshold_statements": statement_dependence(threshold_design(inputs, spec), spec),
        # whether the reference arm's change was pooled across outcomes in this study (spec and evidence)
        "reference_change": {
            "spec": spec.hierarchy.reference_change,
            "applied": "unpooled" if reference_change_unpooled(inputs, spec) else "pooled",
        },
        "timings_seconds": timings,
    }
