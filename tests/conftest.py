"""Shared fixtures. Slow statistical checks run only with ``--slow`` (CI passes it)."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--slow", action="store_true", default=False, help="also run tests marked slow")
    parser.addoption(
        "--release",
        action="store_true",
        default=False,
        help="also run tests marked release: full statistical runs not yet measured inside CI's time budget",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    slow = config.getoption("--slow") or config.getoption("--release")
    release = config.getoption("--release")
    skip_slow = pytest.mark.skip(reason="slow statistical check: run with --slow")
    skip_release = pytest.mark.skip(
        reason="release check, not yet measured inside CI's 90-minute budget on 2 cores: run with --release"
    )
    for item in items:
        if "release" in item.keywords and not release:
            item.add_marker(skip_release)
        elif "slow" in item.keywords and not slow:
            item.add_marker(skip_slow)


@pytest.fixture(autouse=True)
def _quiet_blas_warning():
    warnings.filterwarnings("ignore", message=".*PyTensor could not link to a BLAS.*")
    yield


@pytest.fixture(scope="session")
def pristine_run(tmp_path_factory) -> Path:
    """A complete run folder written by ``write_run`` from a synthetic fit (no sampling, about a second):
    for the tests of run folders and of the commands that read them. Copy it (``run_copy``) to damage it."""
    from bayes_stenosis.run import write_run
    from bayes_stenosis.testing import synthetic_fit, write_study

    root = tmp_path_factory.mktemp("synthetic_run")
    rows = [
        {"outcome": o, "time": t, "measure": "change", "direction": "new_minus_reference", "estimate": -1, "se": 3}
        for o in ("ODI", "VAS")
        for t in (4, 8)
    ]
    study = write_study(
        root / "study",
        outcomes={
            "ODI": {"instrument": "ODI", "scale_max": 100, "margin": 10, "reference_sd": 16},
            "VAS": {"instrument": "VAS", "scale_max": 100, "margin": 15, "reference_sd": 20},
        },
        follow_up=(4.0, 8.0),
        rows={"contrasts.csv": rows},
    )
    return write_run(synthetic_fit(study), root / "out")


@pytest.fixture
def run_copy(pristine_run, tmp_path) -> Path:
    """A fresh copy of :func:`pristine_run` at ``tmp_path/out/test_study/<name>`` (its checksums still hold)."""
    destination = tmp_path / "out" / "test_study" / pristine_run.name
    shutil.copytree(pristine_run, destination)
    return destination


def _synthetic_study_run(
    root: Path, study_id: str, *, unit="mm", sd=20.0, margin=15.0, arms=None, evidence=("VAS",), **fit
) -> Path:
    """One synthetic run (no sampling) of a study with a reported week-4 contrast of each outcome in
    ``evidence`` (by default VAS only: ODI without evidence); 2 x 3000 normal draws of delta (``fit``:
    prior_set, delta_mean, delta_sd)."""
    from bayes_stenosis.run import write_run
    from bayes_stenosis.testing import synthetic_fit, write_study

    rows = [
        {"outcome": o, "time": 4, "measure": "change", "direction": "new_minus_reference", "estimate": -1, "se": 3}
        for o in evidence
    ]
    study = write_study(
        root / study_id,
        outcomes={
            "VAS": {"instrument": "VAS", "scale_max": 100, "margin": margin, "reference_sd": sd, "unit": unit},
            "ODI": {"instrument": "ODI", "scale_max": 100, "margin": 10, "reference_sd": 16},
        },
        rows={"contrasts.csv": rows},
        study_id=study_id,
        arms=arms or ("reference_arm", "new_arm"),
    )
    return write_run(synthetic_fit(study, chains=2, draws=3000, **fit), root / "out")


@pytest.fixture(scope="session")
def synthesis_runs(tmp_path_factory) -> dict[str, Path]:
    """Synthetic run folders for the synthesis tests (vague N(0, 10) prior: the likelihood division is exact):
    ``a`` and ``b`` (VAS in mm, SD 20, margin 15), ``cm`` (VAS in cm, SD 2, margin 1.5: the same standardized
    margin), ``other_arms`` (arms named placebo / calcitonin), ``narrow_margin`` (margin 10 mm), and
    ``no_likelihood`` (a posterior wider than its small-difference prior: no normal likelihood), ``both_a`` and
    ``both_b`` (week-4 evidence on VAS and ODI, for the multivariate synthesis)."""
    root = tmp_path_factory.mktemp("synthesis_runs")
    return {
        "a": _synthetic_study_run(root, "trial_a", delta_mean=-0.3, delta_sd=0.25),
        "b": _synthetic_study_run(root, "trial_b", delta_mean=0.1, delta_sd=0.3, seed=2),
        "cm": _synthetic_study_run(root, "trial_cm", unit="cm", sd=2.0, margin=1.5, delta_mean=0.0, seed=3),
        "other_arms": _synthetic_study_run(root, "trial_arms", arms=("placebo", "calcitonin"), seed=4),
        "narrow_margin": _synthetic_study_run(root, "trial_narrow", margin=10.0, seed=5),
        "no_likelihood": _synthetic_study_run(root, "trial_wide", prior_set="small_difference", delta_sd=0.6, seed=6),
        "both_a": _synthetic_study_run(root, "trial_both_a", evidence=("VAS", "ODI"), delta_mean=-0.2, seed=7),
        "both_b": _synthetic_study_run(root, "trial_both_b", evidence=("VAS", "ODI"), delta_mean=0.15, seed=8),
    }
