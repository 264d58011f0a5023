"""``inference.compiled``: when two models may share one compile (no sampling here)."""

from __future__ import annotations

from bayes_stenosis.inference import structure_key
from bayes_stenosis.model import build_model, prepare_inputs, resolve_prior
from bayes_stenosis.spec import load_spec
from bayes_stenosis.study import load_study
from bayes_stenosis.testing import write_study


def _statement(relation: str, direction: str = "") -> dict:
    return {
        "outcome": "ODI",
        "time": 4,
        "comparison": "between",
        "relation": relation,
        "alpha": 0.05,
        "direction": direction,
        "test": "two_sample_t",
    }


def _model(folder, prior_set="weakly_informative", n=(20, 20)):
    spec, _ = load_spec("default")
    inputs = prepare_inputs(load_study(folder), spec)
    return build_model(inputs, spec, resolve_prior(spec, prior_set, inputs))


def test_structure_key_tells_apart_what_a_data_swap_cannot_change(tmp_path):
    """Same design, other data values (arm sizes, a prior set of the same family): one compile. The same
    variables but another event kind (P>0.05 vs P<0.05), which is a constant in the graph: two."""
    inside = write_study(tmp_path / "a", n_per_arm=(20, 20), rows={"thresholds.csv": [_statement(">")]})
    inside_larger = write_study(tmp_path / "b", n_per_arm=(30, 30), rows={"thresholds.csv": [_statement(">")]})
    below = write_study(tmp_path / "c", n_per_arm=(20, 20), rows={"thresholds.csv": [_statement("<", "favours_new")]})
    key = structure_key(_model(inside))
    assert structure_key(_model(inside)) == key  # deterministic
    assert structure_key(_model(inside_larger)) == key  # SE factors, critical values and df are data
    assert structure_key(_model(inside, "sceptical_of_equivalence")) != key  # normal vs Student-t: another graph
    assert structure_key(_model(inside, "sceptical_of_equivalence")) == structure_key(
        _model(inside, "small_difference")
    )  # two normal prior sets differ only in data
    below_model = _model(below)
    assert [v.name for v in below_model.free_RVs] == [v.name for v in _model(inside).free_RVs]
    assert structure_key(below_model) != key  # same variables, another event: must not share a compile


def test_recently_used_keeps_the_most_recently_read_and_counts_hits():
    """The cache behind CompileCache and the forward-draw functions: a read refreshes a key, adding past the
    capacity drops the least recently used, a miss is no hit."""
    from bayes_stenosis.inference.compiled import RecentlyUsed

    cache = RecentlyUsed(capacity=2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "a" is now the most recently used
    cache.put("c", 3)  # drops "b"
    assert "b" not in cache and "a" in cache and "c" in cache and len(cache) == 2
    assert cache.get("b") is None
    assert cache.hits == 1
