"""``model.builder``: the flagship model's named dims and finite gradient, the caller's inputs left
unchanged, and the same data names for studies of one design (compiled reuse). No sampling."""

from __future__ import annotations

import copy

import numpy as np

from bayes_stenosis.model import (
    build_model,
    data_values,
    prepare_inputs,
    resolve_prior,
)
from bayes_stenosis.study import load_study
from bayes_stenosis.testing import spec_variant, write_study


def test_flagship_model_has_named_dims_and_finite_gradient(flagship):
    study, spec, inputs = flagship
    model = build_model(inputs, spec, resolve_prior(spec, "weakly_informative", inputs))
    assert model.coords["arm"] == ("caudal_esi", "mesotherapy")
    assert model.coords["time"] == (4.0, 8.0)
    assert model.coords["outcome"] == ("VAS", "ODI", "QBPDS", "RMDQ")
    assert model.named_vars_to_dims["delta"] == ("time", "outcome")
    assert model.named_vars_to_dims["delta_natural"] == ("time", "outcome")
    assert model.named_vars_to_dims["change"] == ("arm", "time", "outcome")
    assert len(model.coords["threshold_row"]) == 24
    point = model.initial_point()
    assert np.isfinite(model.compile_logp()(point))
    assert np.all(np.isfinite(model.compile_dlogp()(point)))


def test_build_model_leaves_inputs_unchanged(flagship):
    study, spec, inputs = flagship
    before_thr = study.evidence["threshold"].copy()
    before_inputs = copy.deepcopy(inputs.__dict__)
    build_model(inputs, spec, resolve_prior(spec, "small_difference", inputs))
    assert study.evidence["threshold"].equals(before_thr)
    for key, value in before_inputs.items():
        now = inputs.__dict__[key]
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(now, value)
        elif hasattr(value, "equals"):
            assert now.equals(value), key


def test_same_design_gives_same_data_names_for_compiled_reuse(tmp_path):
    def contrast_study(name, estimate):
        return write_study(
            tmp_path / name,
            rows={
                "contrasts.csv": [
                    {
                        "outcome": "ODI",
                        "time": 4,
                        "measure": "change",
                        "direction": "new_minus_reference",
                        "estimate": estimate,
                        "se": 3,
                    }
                ]
            },
        )

    spec = spec_variant()
    values = []
    for name, est in (("a", -2.0), ("b", 1.5)):
        inputs = prepare_inputs(load_study(contrast_study(name, est)), spec)
        values.append(data_values(build_model(inputs, spec, resolve_prior(spec, "vague", inputs))))
    assert values[0].keys() == values[1].keys()
    assert values[0]["contrast_estimate"][0] == -2.0 and values[1]["contrast_estimate"][0] == 1.5
