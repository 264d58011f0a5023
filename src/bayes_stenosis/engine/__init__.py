"""``engine``: seeded Monte Carlo trials mapped over a Dask cluster, streamed to disk, resumable.

``seeds`` (one generator per trial index, from one root seed) -> ``store`` (one CSV part per finished
batch, the fingerprint of the work, resume) -> ``cluster`` (a ``LocalCluster`` of single-threaded
processes, or an existing scheduler) -> ``mapping`` (:func:`map_trials`: batches to workers, parts to
disk as they arrive, a progress bar). A trial's result depends on its index and the root seed only, so
the same seed gives the same table whatever the number of workers, the batch size or the order in
which batches finish.
"""

from bayes_stenosis.engine.cluster import SCHEDULER_ENV, dask_client
from bayes_stenosis.engine.mapping import MapReport, TrialTask, map_trials, run_batch
from bayes_stenosis.engine.progress import RichTrialProgress
from bayes_stenosis.engine.seeds import trial_rng, trial_seed
from bayes_stenosis.engine.store import TrialStore

__all__ = [
    "SCHEDULER_ENV",
    "MapReport",
    "RichTrialProgress",
    "TrialStore",
    "TrialTask",
    "dask_client",
    "map_trials",
    "run_batch",
    "trial_rng",
    "trial_seed",
]
