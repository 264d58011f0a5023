"""``inference.disk_cache``: a compile saved by one process is loaded by the next, gives the same draws,
and a damaged or foreign cache is rebuilt, never trusted."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import arviz as az
import numpy as np
import pytensor
import pytest

from bayes_stenosis.inference import nutpie_sample
from bayes_stenosis.inference.disk_cache import CACHE_ENV, cache_folder, compile_nutpie_cached
from bayes_stenosis.testing import write_study

# A small model with a normal CDF in its density: its gradient has erfcx, which once made every
# compile uncacheable (a pointer to scipy's Cython function).
MODEL_SOURCE = """
import numpy as np
import pymc as pm

def small_model(sigma=1.0, threshold=(0.3, -0.2, 1.1)):
    with pm.Model() as model:
        threshold = pm.Data("threshold", np.asarray(threshold))
        mu = pm.Normal("mu", 0.0, sigma)
        scale = pm.HalfNormal("scale", 1.0)
        pm.Potential("below", pm.logcdf(pm.Normal.dist(mu, scale), threshold).sum())
        pm.Deterministic("shifted", mu + 1.0)
    return model
"""
namespace: dict = {}
exec(MODEL_SOURCE, namespace)  # noqa: S102 - the same source runs in the subprocess below
small_model = namespace["small_model"]


def _compile(model, folder):
    with pytensor.config.change_flags(numba__fastmath=False):
        return compile_nutpie_cached(model, folder)


def _draws(compiled, **data) -> np.ndarray:
    kernel = compiled.with_data(**data) if data else compiled
    idata = nutpie_sample(kernel, chains=2, draws=100, tune=100, seed=7, target_accept=0.8)
    return np.concatenate([idata.posterior[v].values.ravel() for v in ("mu", "scale", "shifted")])


def test_a_second_compile_loads_from_disk_and_gives_identical_draws(tmp_path):
    cold = _compile(small_model(), tmp_path)
    assert cold.status == "miss"
    warm = _compile(small_model(), tmp_path)  # a new numba cfunc: it reads the files just written
    assert warm.status == "hit"
    assert warm.key == cold.key
    np.testing.assert_array_equal(_draws(cold.compiled), _draws(warm.compiled))
    # data values are not in the key: a swap reaches the loaded code through nutpie's user data
    swapped = np.array([2.0, 1.5, 0.4])
    np.testing.assert_array_equal(_draws(cold.compiled, threshold=swapped), _draws(warm.compiled, threshold=swapped))
    assert not np.array_equal(_draws(warm.compiled), _draws(warm.compiled, threshold=swapped))


def test_a_hit_loads_through_the_index_without_compiling_pytensor_functions(tmp_path):
    """The index serves a hit from the model as built (no pytensor functions compiled, no rewrites):
    same layout, same user-data record and same draws as the full path; data swaps still reach the code."""
    cold = _compile(small_model(), tmp_path)
    assert cold.compiled.logp_func is not None
    (index,) = tmp_path.glob("index_*.json")
    warm = _compile(small_model(), tmp_path)
    assert (warm.status, warm.key) == ("hit", cold.key)
    assert warm.compiled.logp_func is None and warm.compiled.expand_func is None  # served by the index
    assert warm.compiled.n_dim == cold.compiled.n_dim and warm.compiled.n_expanded == cold.compiled.n_expanded
    assert warm.compiled.shape_info[0] == cold.compiled.shape_info[0]
    assert warm.compiled.shape_info[1] == cold.compiled.shape_info[1]
    assert [tuple(s) for s in warm.compiled.shape_info[2]] == [tuple(s) for s in cold.compiled.shape_info[2]]
    assert warm.compiled.user_data.dtype == cold.compiled.user_data.dtype
    np.testing.assert_array_equal(_draws(cold.compiled), _draws(warm.compiled))
    swapped = np.array([2.0, 1.5, 0.4])
    np.testing.assert_array_equal(_draws(cold.compiled, threshold=swapped), _draws(warm.compiled, threshold=swapped))
    # an index that cannot be read, or names a variable the model lacks: the full path, still a hit
    for damaged in ("not json", json.dumps({**json.loads(index.read_text()), "shared": [["nowhere", 1, "float64"]]})):
        index.write_text(damaged)
        fallback = _compile(small_model(), tmp_path)
        assert (fallback.status, fallback.key) == ("hit", cold.key)
        assert fallback.compiled.logp_func is not None
        np.testing.assert_array_equal(_draws(cold.compiled), _draws(fallback.compiled))
    assert _compile(small_model(), tmp_path).compiled.logp_func is None  # the full path wrote it again


def test_another_process_loads_the_compile(tmp_path):
    """The real case: fresh interpreters (other hash seeds, other rewrite orders) find the saved code."""
    first = _compile(small_model(), tmp_path)
    script = MODEL_SOURCE + (
        "\nimport pytensor\nfrom bayes_stenosis.inference.disk_cache import compile_nutpie_cached\n"
        "with pytensor.config.change_flags(numba__fastmath=False):\n"
        "    print(compile_nutpie_cached(small_model()).status)\n"
    )

    def status_in_new_process(hash_seed: str) -> str:
        env = {**os.environ, CACHE_ENV: str(tmp_path), "PYTHONHASHSEED": hash_seed}
        out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
        return out.stdout.strip().splitlines()[-1]

    assert first.status == "miss"
    # the key is the model as built: whatever order pytensor's rewrites take in a process (they
    # differ between processes), every later process loads the first one's code
    assert [status_in_new_process(seed) for seed in ("0", "1", "2")] == ["hit", "hit", "hit"]


def test_a_different_graph_gets_a_different_key(tmp_path):
    base = _compile(small_model(), tmp_path)
    other = _compile(small_model(sigma=2.0), tmp_path)  # a constant of the graph, not data
    assert other.key != base.key
    assert other.status == "miss"


@pytest.mark.parametrize("damage", ["truncate", "flip", "checksums"])
def test_damaged_files_are_rebuilt_not_trusted(tmp_path, damage):
    cold = _compile(small_model(), tmp_path)
    data_files = sorted(tmp_path.glob("__pycache__/*.nbc"))
    assert data_files
    if damage == "truncate":
        data_files[0].write_bytes(data_files[0].read_bytes()[:1000])
    elif damage == "flip":
        raw = bytearray(data_files[0].read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        data_files[0].write_bytes(bytes(raw))
    else:
        checksums = next(tmp_path.glob("*.sha256.json"))
        recorded = json.loads(checksums.read_text())
        recorded[next(iter(recorded))] = "0" * 64
        checksums.write_text(json.dumps(recorded))
    rebuilt = _compile(small_model(), tmp_path)
    assert rebuilt.status == "rebuilt"
    assert rebuilt.compiled.logp_func is not None  # the index does not serve damaged files
    np.testing.assert_array_equal(_draws(cold.compiled), _draws(rebuilt.compiled))
    assert _compile(small_model(), tmp_path).status == "hit"


def test_the_cache_can_be_turned_off_and_moved(monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_ENV, "off")
    assert cache_folder() is None
    off = _compile(small_model(), None)
    assert off.status == "off" and off.key is not None
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "elsewhere"))
    assert cache_folder() == tmp_path / "elsewhere"
    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_folder() == tmp_path / "xdg" / "bayes-stenosis" / "nutpie"


@pytest.mark.slow
def test_same_seed_same_draws_with_a_cold_and_a_warm_compile_cache(tmp_path):
    """A threshold study of the flagship's kind (two outcomes, two times, between- and within-arm
    statements: every operation of the flagship's graph) fitted twice in fresh processes sharing one new
    pytensor cache and one new compile cache: the first compiles from nothing, the second loads the
    compiled model from disk (the manifest says so). The draws must be identical. (With numba's
    fastmath on they were not: the two runs' posteriors differed from the first draw.) A smaller graph
    than the flagship's four outcomes, so a cheaper cold compile."""
    import os
    import subprocess
    import sys

    outcomes = {
        "ODI": {"instrument": "ODI", "scale_max": 100, "margin": 10, "reference_sd": 16},
        "RMDQ": {"instrument": "RMDQ", "scale_max": 24, "margin": 5, "reference_sd": 5},
    }
    statements = [
        {"outcome": o, "time": t, "comparison": "between", "relation": ">", "alpha": 0.05, "test": "two_sample_t"}
        for o in outcomes
        for t in (4, 8)
    ] + [
        {
            "outcome": o,
            "time": t,
            "comparison": "within",
            "arm": arm,
            "relation": "<",
            "alpha": 0.05,
            "direction": "improvement",
            "test": "paired_t",
        }
        for o in outcomes
        for t in (4, 8)
        for arm in ("reference_arm", "new_arm")
    ]
    study = write_study(
        tmp_path / "study", outcomes=outcomes, follow_up=(4.0, 8.0), rows={"thresholds.csv": statements}
    )

    flags = [os.environ.get("PYTENSOR_FLAGS", ""), f"base_compiledir={tmp_path / 'pytensor'}"]
    env = {
        **os.environ,
        "PYTENSOR_FLAGS": ",".join(f for f in flags if f),
        "BAYES_STENOSIS_COMPILE_CACHE": str(tmp_path / "compiled"),
    }
    posteriors, served = [], []
    for run in ("cold", "warm"):
        command = [sys.executable, "-m", "bayes_stenosis.cli", "fit", str(study), "--chains", "2"]
        command += ["--draws", "200", "--tune", "200", "--no-plots", "--no-report", "--no-progress"]
        command += ["--out", str(tmp_path / run)]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1200)
        assert done.returncode == 0, done.stderr[-2000:]
        (nc,) = (tmp_path / run).rglob("posterior.nc")
        posteriors.append(az.from_netcdf(str(nc)).posterior)
        served.append(json.loads((nc.parent / "manifest.json").read_text())["sampler"]["compile_cache"])
    assert served == ["miss", "hit"]
    np.testing.assert_array_equal(posteriors[0]["Delta"].values, posteriors[1]["Delta"].values)
