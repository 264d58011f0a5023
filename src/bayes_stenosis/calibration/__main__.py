"""``python -m bayes_stenosis.calibration {sbc,coverage,coverage-merge,plot} ...``."""

from bayes_stenosis.calibration.sbc import main

raise SystemExit(main(prog="python -m bayes_stenosis.calibration"))
