"""Fixtures shared by the model tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def flagship():
    # imported here, not at the top: pytest loads this file before it captures logging when a test path
    # names this folder, and PyMC imported then logs every forward-sampling call to stderr at INFO
    from bayes_stenosis.model import prepare_inputs
    from bayes_stenosis.spec import load_spec
    from bayes_stenosis.study import load_study

    study = load_study("farpour2022")
    spec, _ = load_spec("default")
    inputs = prepare_inputs(study, spec)
    return study, spec, inputs
