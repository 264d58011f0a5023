"""``diagnostics.parameter_table``: every quantity's row, a constant one (a correlation matrix's diagonal)
with NaN R-hat and ESS and no warning (a fit's log printed one per constant entry)."""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np

from bayes_stenosis.diagnostics import parameter_table


def test_constant_quantities_get_nan_diagnostics_without_warnings():
    rng = np.random.default_rng(3)
    corr = np.ones((4, 500, 2, 2))
    corr[..., 0, 1] = corr[..., 1, 0] = rng.uniform(0.1, 0.5, (4, 500))
    idata = az.from_dict(posterior={"x": rng.normal(size=(4, 500)), "corr": corr})
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        table = parameter_table(idata, var_names=["x", "corr"]).set_index("quantity")
    assert np.isnan(table.loc["corr[0, 0]", "r_hat"]) and np.isfinite(table.loc["corr[0, 1]", "r_hat"])
    # the 95 % equal-tailed interval of x, as the quantiles of its draws
    draws = idata.posterior["x"].values.ravel()
    np.testing.assert_allclose(table.loc["x", ["eti_2.5%", "eti_97.5%"]], np.quantile(draws, [0.025, 0.975]))
