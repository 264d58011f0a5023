"""``bayes-stenosis data template``: an empty, valid study folder with comments to fill in."""

from __future__ import annotations

from pathlib import Path

from bayes_stenosis.errors import InputError
from bayes_stenosis.study import SCHEMAS

STUDY_TOML = """\
# A bayes-stenosis study folder. Replace every placeholder; every number needs a source (paper,
# table or page, address). Unknown numbers are left out, never guessed. Check with:
#   bayes-stenosis data validate THIS_FOLDER
schema_version = 1

[study]
id = "my_study"                 # lower-case letters, digits and _
title = "REPLACE: short title of the trial"
citation = "REPLACE: authors, title, journal, year, volume, pages"
doi = ""                        # e.g. "10.1097/..."
design = "parallel"             # two-arm parallel-group randomised trial
# n_randomised_total = 40       # if only the total is known (per-arm n below otherwise)
# n_randomised_total_source = "REPLACE: where the total comes from"
allocation = ""                 # notes on allocation, per-arm n, dropouts
simulated = false
pages_read = []                 # addresses of what was read
notes = []                      # what the sources do and do not contain

# Exactly two arms: one "new", one "reference". The ids become the arm column in the CSVs.
[arms.new_arm]
label = "REPLACE: the new treatment"
role = "new"
# n_randomised = 20
# n_source = "REPLACE: where the n comes from"

[arms.reference_arm]
label = "REPLACE: the comparator"
role = "reference"

# Baseline and follow-up times (weeks). CSV rows use these values in their time column.
[times]
unit = "weeks"
baseline = 0
follow_up = [4]
source = "REPLACE: where the visit schedule comes from"

# One table per outcome; the id (here ODI) is the outcome column in the CSVs. Worked example:
[outcomes.ODI]
label = "Oswestry Disability Index"
instrument = "ODI"              # VAS, NRS, ODI, RMDQ, QBPDS or other
unit = "points"
scale_min = 0
scale_max = 100
scale_source = "instrument definition (0-100)"
direction = "lower_is_better"   # or "higher_is_better"
margin = 10                     # equivalence margin, natural units
margin_source = "Ostelo RW et al. Spine 2008;33(1):90-4: consensus MIC 10 points"
# reference_sd = 16             # needed when the data give no baseline SDs (e.g. threshold statements)
# reference_sd_source = "REPLACE: where the SD comes from"
"""


def write_template(out_dir: Path) -> None:
    """Write ``study.toml`` and header-only evidence CSVs into a new (or empty) folder."""
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise InputError(out_dir, "exists and is not an empty folder; nothing was written")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "study.toml").write_text(STUDY_TOML)
    for level, name in (
        ("arm_summary", "arm_summaries.csv"),
        ("contrast", "contrasts.csv"),
        ("threshold", "thresholds.csv"),
    ):
        header = ",".join(col.name for col in SCHEMAS[level])
        (out_dir / name).write_text(header + "\n")
