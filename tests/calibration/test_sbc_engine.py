"""SBC on the engine: the refits of a case's replicates on a Dask worker give the serial run's ranks (slow)."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from bayes_stenosis.calibration import CASES, MODES
from bayes_stenosis.calibration.sbc import run_case
from bayes_stenosis.calibration.sbc_engine import run_case_on_engine
from bayes_stenosis.engine import dask_client


@pytest.mark.slow
def test_engine_ranks_are_the_serial_ranks(tmp_path):
    """Six replicates of the contrast case (quick mode's sampler), the package's likelihood and the wrong one:
    the same rank rows and divergence counts serially and on an in-process worker; a rerun refits nothing."""
    case, mode = CASES["contrast"], dataclasses.replace(MODES["quick"], replicates=6)
    variants = (None, case.wrong)
    serial = run_case(case, mode, seed=7, wrong=variants, mode_name="quick", log=lambda *_: None)
    with dask_client(workers=1, processes=False) as (client, _):
        kwargs = {"seed": 7, "client": client, "store": tmp_path, "wrong": variants, "mode_name": "quick"}
        engine = run_case_on_engine(case, mode, log=lambda *_: None, **kwargs)
        again = run_case_on_engine(case, mode, log=lambda *_: None, **kwargs)
    for a, b, c in zip(serial, engine, again, strict=True):
        assert a.wrong == b.wrong and a.divergent_fits == b.divergent_fits
        pd.testing.assert_frame_equal(a.ranks, b.ranks, check_dtype=False)
        pd.testing.assert_frame_equal(b.ranks, c.ranks)
