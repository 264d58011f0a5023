"""SBC on the trial engine: each replicate refitted on a Dask worker (one compile per model structure per
worker process), each finished replicate saved as it arrives, the ranks those of the serial run.

The replicates (prior draws, simulated data, each fit's seed) are simulated once, on the client, exactly
as :func:`~bayes_stenosis.calibration.sbc.run_case` does; a worker only refits replicate ``r`` with its
own seed, so the rank rows do not depend on the number of workers.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bayes_stenosis.calibration.cases import Case, Mode, build_case_model, case_template
from bayes_stenosis.calibration.ranks import SBCResult, ranks_of_truth
from bayes_stenosis.calibration.results import ALPHA
from bayes_stenosis.calibration.sbc import Replicates, case_results, pattern_label, simulate_replicates
from bayes_stenosis.engine import map_trials
from bayes_stenosis.inference import CompiledModel, SamplerSettings
from bayes_stenosis.spec import ModelSpec, load_spec

#: Compiled models of this worker process: (case, seed, event pattern) -> the compile, shared by the variants.
WORKER_MODELS: dict[tuple, CompiledModel] = {}


@dataclass(frozen=True)
class SBCReplicateTask:
    """Refit replicate ``r`` of a case under likelihood ``wrong`` (a :class:`bayes_stenosis.engine.TrialTask`;
    the engine's stream is not used: the replicate has its seed)."""

    case: Case
    spec: ModelSpec
    reps: Replicates
    settings: SamplerSettings
    seed: int
    wrong: str | None
    thin_to: int
    fingerprint: str

    def compiled(self, r: int) -> CompiledModel:
        """This worker's compile of replicate ``r``'s structure (its event pattern's template for threshold
        cases whose kinds are constants), built on first use."""
        pattern = self.reps.compile_key(r)
        key = (self.case.name, self.seed, pattern)
        if key not in WORKER_MODELS:
            model = self.reps.model
            if pattern:
                with tempfile.TemporaryDirectory() as tmp:
                    folder = Path(tmp) / f"{self.case.name}_{'_'.join(pattern)}"
                    template = case_template(self.case, folder, self.seed, events=pattern)
                    model = build_case_model(template, self.spec)[0]
            WORKER_MODELS[key] = CompiledModel(model, self.settings)
        return WORKER_MODELS[key]

    def __call__(self, trial: int, rng) -> list[dict]:
        r = int(trial)
        idata = self.compiled(r).fit_values(self.reps.data(r, self.wrong), seed=int(self.reps.fit_seeds[r]))
        divergent = int(idata.sample_stats["diverging"].sum() > 0)
        pattern = pattern_label(self.reps.patterns[r])
        rows = ranks_of_truth(idata, self.reps.truth(r), self.reps.names, self.thin_to)
        return [{"pattern": pattern, **row, "divergent_fit": divergent} for row in rows]


def run_case_on_engine(
    case: Case,
    mode: Mode,
    *,
    seed: int,
    client,
    store: Path,
    spec: ModelSpec | None = None,
    wrong=(None,),
    alpha: float = ALPHA,
    mode_name: str = "",
    log=print,
) -> list[SBCResult]:
    """:func:`~bayes_stenosis.calibration.sbc.run_case` with the refits on ``client``'s workers; each
    variant's replicates saved under ``store`` as they finish (a killed run resumes from them)."""
    spec = case.spec(spec or load_spec()[0])
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        reps = simulate_replicates(
            case, mode, spec, case_template(case, Path(tmp) / f"{case.name}_template", seed), seed
        )
    ranked = {}
    for v in wrong:
        fingerprint = f"sbc-v1:{case.name}:{mode_name}:{mode}:{seed}:{v}"
        task = SBCReplicateTask(case, spec, reps, mode.settings(), seed, v, mode.thin_to, fingerprint)
        name = f"{case.name}-{v or 'model'}"
        table = map_trials(
            task, mode.replicates, root_seed=seed, store_path=store / name, client=client, batch_size=1
        ).table
        divergent = int(table.groupby("trial")["divergent_fit"].first().sum())
        table["pattern"] = table["pattern"].fillna("").astype(str)  # "" (no statements) reads back as NaN
        rows = table.drop(columns="divergent_fit").rename(columns={"trial": "replicate"}).to_dict("records")
        ranked[v] = (rows, divergent)
        log(f"  {case.name}{f' (wrong: {v})' if v else ''}: {mode.replicates} replicates on the engine")
    # the compiles happen on the workers (once per structure each): their time is not counted here
    structures = len({reps.compile_key(r) for r in range(mode.replicates)})
    return case_results(case, mode, spec, reps, ranked, alpha, mode_name, start, 0.0, structures)
