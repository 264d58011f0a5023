"""The full-refit path: each simulated confirmatory trial reported as arm summaries and fitted with the
package's model (the run's spec and prior set), one compile per model structure per worker process.

A trial of ``n`` patients per arm: each patient's changes across the cells are drawn from
:math:`N(\\mu_{arm}, \\Sigma)` (standardized; the reference arm's true mean change is the run's posterior
median, the new arm's that plus the trial's true delta; :math:`\\Sigma` as in the fast path), and the
trial reports each arm's mean and SD of change per cell, the arm-summary evidence of a study folder.
The truth and :math:`\\Sigma` of trial ``i`` are those of the fast path's trial ``i`` (the same first
draws of its stream), so the two paths can be compared trial by trial.
"""

from __future__ import annotations

import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_stenosis.design.fast import row
from bayes_stenosis.design.inputs import DesignInputs
from bayes_stenosis.inference import CompileCache, SamplerSettings
from bayes_stenosis.model import build_model
from bayes_stenosis.run import RunFolder, load_model_spec, prepare_fit
from bayes_stenosis.study.writer import dumps_toml, evidence_csv, write_folder

#: Compiles of this worker process, by sampler settings: every trial after a worker's first of a model
#: structure swaps its data into the compiled code.
WORKER_CACHES: dict[tuple, CompileCache] = {}


@dataclass(frozen=True)
class RefitSettings:
    """The sampler of every refit (fewer draws than a reanalysis: a decision per trial, not a report)."""

    chains: int = 2
    draws: int = 500
    tune: int = 500


@dataclass(frozen=True)
class RefitTrial:
    """One simulated confirmatory trial at every per-arm ``n``, fitted with the package's model (a
    :class:`bayes_stenosis.engine.TrialTask`); rows as :class:`~bayes_stenosis.design.FastTrial`'s, the
    probabilities the shares of posterior draws."""

    inputs: DesignInputs
    ns: tuple[int, ...]
    study_doc: dict
    spec_path: str
    prior_set: str
    reference_change: np.ndarray
    scale: np.ndarray
    sampler: RefitSettings = RefitSettings()
    fingerprint: str = field(init=False)

    def __post_init__(self) -> None:
        s = self.sampler
        key = f"refit-v1:{self.inputs.fingerprint()}:{','.join(map(str, self.ns))}:{self.prior_set}"
        object.__setattr__(self, "fingerprint", f"{key}:{s.chains}x{s.draws}+{s.tune}")

    def __call__(self, trial: int, rng: np.random.Generator) -> list[dict]:
        x = self.inputs
        truth, sigma = x.sample(rng)
        rng.standard_normal(len(truth))  # the fast path's error vector: the streams stay aligned
        inside = np.abs(truth) < x.margins
        rows = []
        for n in self.ns:
            means, sds = self.arm_summaries(truth, sigma, n, rng)
            delta = self.fit(means, sds, n, int(rng.integers(2**31 - 1)))
            within = np.abs(delta) < x.margins  # draws x cells
            prob = within.mean(axis=0)
            for c, (t, o) in enumerate(x.cells):
                rows.append(row(n, "cell", t, o, truth[c], inside[c], prob[c], prob[c] >= x.threshold))
            for t in x.times:
                idx = [i for i, (tt, _) in enumerate(x.cells) if tt == t]
                p = within[:, idx].all(axis=1).mean()
                rows.append(row(n, "joint_time", t, "all", np.nan, inside[idx].all(), p, p >= x.threshold))
            p = within.all(axis=1).mean()
            rows.append(row(n, "joint_all", np.nan, "all", np.nan, inside.all(), p, p >= x.threshold))
        return rows

    def arm_summaries(self, truth, sigma, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
        """Each arm's sample mean and SD of change per cell (``2 x k``, standardized) from ``n`` patients."""
        chol = np.linalg.cholesky(sigma)
        means, sds = [], []
        for mu in (self.reference_change, self.reference_change + truth):
            patients = mu + rng.standard_normal((n, len(truth))) @ chol.T
            means.append(patients.mean(axis=0))
            sds.append(patients.std(axis=0, ddof=1))
        return np.array(means), np.array(sds)

    def fit(self, means: np.ndarray, sds: np.ndarray, n: int, seed: int) -> np.ndarray:
        """Posterior draws of delta (standardized, draws x cells) of the trial's study, fitted on this
        worker's compile of its structure."""
        with tempfile.TemporaryDirectory(prefix="design-trial-") as tmp:
            folder = write_folder(Path(tmp), self.study_files(means, sds, n))
            prepared = prepare_fit(folder, spec=self.spec_path, prior_set=self.prior_set)
            model = build_model(prepared.inputs, prepared.spec, prepared.prior)
        s = self.sampler
        key = (self.spec_path, s.chains, s.draws, s.tune)
        if key not in WORKER_CACHES:
            settings = SamplerSettings.from_spec(
                prepared.spec.sampler, seed=0, chains=s.chains, draws=s.draws, tune=s.tune
            )
            WORKER_CACHES[key] = CompileCache(settings)
        compiled, _ = WORKER_CACHES[key].get(model)
        idata = compiled.fit(model, seed=seed)
        d = idata.posterior["delta"].stack(sample=("chain", "draw")).transpose("sample", "time", "outcome")
        d = d.sel(time=list(self.inputs.times), outcome=list(self.inputs.outcomes))
        return d.values.reshape(d.sizes["sample"], -1)

    def study_files(self, means: np.ndarray, sds: np.ndarray, n: int) -> dict[str, str]:
        """``study.toml`` (the run's study, marked simulated, ``n`` per arm) and ``arm_summaries.csv``."""
        doc = {key: dict(value) if isinstance(value, dict) else value for key, value in self.study_doc.items()}
        source = f"SIMULATED confirmatory trial of {n} per arm (bayes-stenosis design, full refit)"
        doc["study"] = {
            **{k: v for k, v in doc["study"].items() if k not in ("pages_read", "notes", "allocation")},
            "simulated": True,
            "n_randomised_total": 2 * n,
            "n_randomised_total_source": source,
            "notes": [source],
        }
        doc["arms"] = {name: {**arm, "n_randomised": n, "n_source": source} for name, arm in doc["arms"].items()}
        roles = {arm["role"]: name for name, arm in doc["arms"].items()}
        records = []
        scale = np.tile(self.scale, len(self.inputs.times))
        for a, role in enumerate(("reference", "new")):
            for c, (t, o) in enumerate(self.inputs.cells):
                records.append(
                    {
                        "arm": roles[role],
                        "outcome": o,
                        "time": t,
                        "kind": "change",
                        "n": n,
                        "mean": float(means[a, c] * scale[c]),
                        "sd": float(sds[a, c] * scale[c]),
                        "source": source,
                        "note": "",
                    }
                )
        files = {"study.toml": dumps_toml(doc, "SIMULATED by bayes-stenosis design (not observed data)")}
        return files | {"arm_summaries.csv": evidence_csv("arm_summary", pd.DataFrame(records))}


def refit_trial_from_run(run: RunFolder, inputs: DesignInputs, ns, sampler: RefitSettings) -> RefitTrial:
    """The full-refit task of a run: its study (``inputs/study/study.toml``), spec and prior set, the
    reference arm's true mean change (posterior median) and the standardising SDs."""
    manifest = run.manifest
    study_doc = tomllib.loads(run.file("inputs/study/study.toml").read_text())
    spec_path = str(run.file("inputs/spec.toml"))
    load_model_spec(spec_path)  # a damaged spec fails here, not on every worker
    reference = manifest["arms"]["reference"]
    post = run.idata.posterior
    if "change" in post:
        change = post["change"].sel(arm=reference, time=list(inputs.times), outcome=list(inputs.outcomes))
        reference_change = change.median(("chain", "draw")).values.reshape(-1)
        inputs.notes["reference_change"] = "the reference arm's true mean change: the run's posterior median"
    else:  # delta does not depend on it; the within-arm part of the model sees a change of 0
        reference_change = np.zeros(len(inputs.margins))
        inputs.notes["reference_change"] = (
            "the run has no posterior of the change: the reference arm's true change is 0"
        )
    scale = np.array([float(manifest["scale"][o]["value"]) for o in inputs.outcomes])
    return RefitTrial(
        inputs, tuple(sorted(set(ns))), study_doc, spec_path, manifest["prior_set"], reference_change, scale, sampler
    )
