"""Shared by the divergence diagnoses (``diagnose_*_divergences.py``): where divergent draws sit."""

import numpy as np


def divergent_draw_quantiles(idata, names) -> list[str]:
    """Per element of each named variable: the median quantile of the divergent draws among the others.

    A funnel at 0 shows its scale parameter near quantile 0. Constant elements (a correlation
    matrix's diagonal) are skipped.
    """
    div = idata.sample_stats["diverging"].values.ravel()
    out = []
    for name in names:
        if name not in idata.posterior:
            continue
        x = idata.posterior[name].values.reshape(div.size, -1)
        for j in range(x.shape[1]):
            if np.ptp(x[:, j]) == 0:
                continue
            q = np.mean(x[~div, j][:, None] < x[div, j][None, :], axis=0)
            out.append(f"{name}[{j}] q={np.median(q):.2f}")
    return out
