"""``analyses.sensitivity.configs``: the grid (the spec's ``[sensitivity]`` table; a bad one is a one-line
error naming the field), margin sets rescaled to the outcome scale, seeds from the configuration."""

from __future__ import annotations

import pytest

from bayes_stenosis.analyses import FitConfig, margin_sets
from bayes_stenosis.errors import InputError
from bayes_stenosis.spec import load_spec
from bayes_stenosis.study import load_study
from bayes_stenosis.testing import write_spec_with_grid, write_study


def test_default_grid_crosses_priors_with_correlations_and_with_pooling():
    from bayes_stenosis.analyses.sensitivity import grid

    spec, _ = load_spec("default")
    assert spec.sensitivity.prior_sets == [
        "weakly_informative",
        "small_difference",
        "sceptical_of_equivalence",
        "enthusiastic",
        "vague",
    ]
    assert spec.sensitivity.correlations == ["uncertain", 0.25, 0.5, 0.75]
    configs, reference = grid(spec, uses_rho=True)
    assert reference == FitConfig("weakly_informative", "uncertain")
    # 5 x 4 with the spec's pooling; then each prior set that pools (not vague: never pooled) x 2
    # alternative poolings at the reference correlation
    assert len(configs) == 20 + 4 * 2 and len({c.label for c in configs}) == len(configs)
    assert FitConfig("vague", "uncertain", "none") not in configs
    # a grid without the pooling axis keeps its labels, so its seeds
    assert FitConfig("vague", 0.25).label == "vague | rho fixed 0.25"
    wide = FitConfig("weakly_informative", "uncertain", 0.5).spec(spec).hierarchy
    assert (wide.outcome_pooling, wide.tau_scale) == ("partial", 0.5)
    assert FitConfig("enthusiastic", "uncertain", "none").spec(spec).hierarchy.outcome_pooling == "none"
    assert FitConfig("vague", 0.5).spec(spec).correlation.fixed_baseline_followup == 0.5


def test_threshold_axes_cross_every_prior_set_one_axis_at_a_time():
    """With threshold statements the grid adds, at the reference correlation and the spec's pooling, every
    prior set x every alternative test assumed (2), fixed follow-up / baseline SD ratio (2) and share
    analysed (1); each configuration's spec carries exactly its change."""
    from bayes_stenosis.analyses.sensitivity import grid

    spec, _ = load_spec("default")
    base, _ = grid(spec, uses_rho=True)
    configs, reference = grid(spec, uses_rho=True, uses_thresholds=True)
    assert configs[: len(base)] == base  # the earlier fits keep their labels and seeds
    extra = configs[len(base) :]
    assert len(extra) == 5 * (2 + 2 + 1) and len({c.label for c in configs}) == len(configs)
    assert all(c.correlation == reference.correlation and c.pooling == "spec" for c in extra)
    ancova = FitConfig("vague", "uncertain", between_test="ancova").spec(spec)
    assert ancova.thresholds.between_test == "ancova" and ancova.hierarchy == spec.hierarchy
    fixed = FitConfig("weakly_informative", "uncertain", followup_sd_ratio=1.6).spec(spec).scale
    assert (fixed.followup_sd_ratio_median, fixed.followup_sd_ratio_log_sd) == (1.6, 0.0)
    completers = FitConfig("weakly_informative", "uncertain", analysed_fraction=0.8).spec(spec)
    assert completers.thresholds.analysed_fraction == 0.8 and completers.scale == spec.scale
    assert FitConfig("enthusiastic", "uncertain", between_test="follow_up").label.endswith("| test follow_up")


@pytest.mark.parametrize(
    ("prior_sets", "correlations", "extra", "field"),
    [
        (["vague"], ["uncertain"], "unknown_key = 1\n", "sensitivity.unknown_key"),
        (["no_such_prior"], ["uncertain"], "", None),
        (["vague"], [1.5], "", "sensitivity"),
        (["vague", "vague"], ["uncertain"], "", "sensitivity"),
    ],
)
def test_bad_grids_are_one_line_errors_naming_the_field(tmp_path, prior_sets, correlations, extra, field):
    path = write_spec_with_grid(tmp_path, prior_sets, correlations, extra)
    with pytest.raises(InputError) as err:
        load_spec(path)
    if field:
        assert field in err.value.one_line()
    assert "\n" not in err.value.one_line()


def test_margin_sets_rescale_to_the_outcome_scale_and_keep_unlisted_instruments(tmp_path):
    spec, _ = load_spec("default")
    pod = margin_sets(load_study("podichetty2004"), spec)  # VAS on 0-10
    assert pod["study"]["VAS"][0] == 1.5
    assert pod["methods_lower"]["VAS"][0] == pytest.approx(1.0)
    assert pod["methods_upper"]["VAS"][0] == pytest.approx(2.0)
    far = margin_sets(load_study("farpour2022"), spec)
    assert {o: v[0] for o, v in far["methods_lower"].items()} == {"VAS": 10, "ODI": 6, "QBPDS": 6, "RMDQ": 2}
    other = write_study(tmp_path / "s", outcomes={"X": {"instrument": "other", "margin": 4, "reference_sd": 8}})
    kept = margin_sets(load_study(other), spec)["methods_lower"]["X"]
    assert kept[0] == 4 and "study margin kept" in kept[1]


def test_fit_seeds_depend_on_the_configuration_not_its_position():
    a, b = FitConfig("vague", 0.25), FitConfig("vague", 0.75)
    assert a.seed(1) == FitConfig("vague", 0.25).seed(1)
    assert len({a.seed(1), b.seed(1), a.seed(2), FitConfig("vague", "uncertain").seed(1)}) == 4
