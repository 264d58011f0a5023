"""``bayes-stenosis data template``: an empty but valid study folder, with a comment on every key.

The folder holds ``study.toml`` (placeholder arms ``new_arm`` / ``reference_arm``, one follow-up time and
the ODI as a worked outcome example, so that it loads as it stands) and ``arm_summaries.csv``,
``contrasts.csv`` and ``thresholds.csv`` with their header row only (add ``ipd.csv`` for patient-level
data; its columns are in :data:`bayes_stenosis.study.SCHEMAS`). Nothing is ever overwritten: an existing,
non-empty folder is refused.
"""

from __future__ import annotations

from pathlib import Path

from bayes_stenosis.errors import InputError
from bayes_stenosis.study.schema import EVIDENCE_FILES
from bayes_stenosis.study.writer import evidence_csv, write_folder

STUDY_TOML = """\
# A bayes-stenosis study folder: this file (design) plus one CSV per evidence level
# (arm_summaries.csv, contrasts.csv, thresholds.csv, and ipd.csv for patient-level data:
# patient,arm,outcome,time,value,source,note). Delete the CSVs you do not use.
#
# RULES
# * Every number needs a source: paper, table or page, and the address you read it at.
#   Put it in the matching *_source key here, or in the `source` column of the CSVs.
# * A number the paper does not report is left out (or its CSV cell left empty). Never estimate
#   or fill it in. A value you computed yourself says "derived:" and shows the arithmetic.
# * Replace every REPLACE and every placeholder id (new_arm, reference_arm, ODI) with your own.
# * Unknown keys are errors: the schema is closed. Check the folder with
#       bayes-stenosis data validate PATH/TO/THIS/FOLDER

schema_version = 1              # format version of this file; leave at 1

[study]
id = "my_study"                 # REPLACE: short id, lower-case letters, digits and _ (e.g. smith2020)
title = "REPLACE: short title of the trial"              # one line, shown by `data list`
citation = "REPLACE: authors, title, journal year;volume(issue):pages"  # the full reference
doi = ""                        # REPLACE: the DOI without https://doi.org/ (e.g. "10.1097/..."); "" if none
design = "parallel"             # two-arm parallel-group randomised trial (the only design supported)
# n_randomised_total = 40       # only if the total is known but the per-arm n is not; needs the next key
# n_randomised_total_source = "REPLACE: paper, table/abstract, address"  # where the total comes from
allocation = ""                 # free text: allocation ratio, per-arm n, dropouts, as the paper says
simulated = false               # true only for made-up test data, never for a real trial
pages_read = []                 # addresses of every page or PDF you read, e.g. ["https://... (abstract)"]
notes = []                      # what the sources contain and what they do not; why a number was left out

# Exactly two arms: one with role "new", one with role "reference". The table names (new_arm and
# reference_arm here) are the arm ids used in the `arm` column of the CSVs; rename both places.
[arms.new_arm]
label = "REPLACE: the new treatment (drug, dose, route, schedule)"  # shown in tables and reports
role = "new"                    # the treatment under test; contrasts are new minus reference
# n_randomised = 20             # randomised n in this arm, if reported; needs n_source
# n_source = "REPLACE: paper, table/abstract, address"  # where the n comes from

[arms.reference_arm]
label = "REPLACE: the comparator (placebo, usual care, the established treatment)"  # shown in tables
role = "reference"              # the comparator
# n_randomised = 20             # randomised n in this arm, if reported; needs n_source
# n_source = "REPLACE: paper, table/abstract, address"  # where the n comes from

# Visit schedule. Every `time` in the CSVs must be the baseline or one of the follow-up times.
[times]
unit = "weeks"                  # the only unit supported: convert months (1 month = 4, 3 = 13, 6 = 26)
baseline = 0                    # the baseline visit
follow_up = [4]                 # REPLACE: follow-up visits with evidence, after baseline, e.g. [4, 8]
source = "REPLACE: paper, section/abstract, address"  # where the visit schedule comes from

# One table per outcome. The table name (ODI here) is the outcome id used in the `outcome` column of
# the CSVs. This ODI table is a worked example with real sources; edit or replace it, and copy it
# for further outcomes.
[outcomes.ODI]
label = "Oswestry Disability Index"   # the outcome as the paper names it
instrument = "ODI"              # one of VAS, NRS, ODI, RMDQ, QBPDS, other
unit = "points"                 # units of the scale (e.g. mm for a 0-100 VAS, cm for 0-10)
scale_min = 0                   # lowest possible score
scale_max = 100                 # highest possible score
# where the range comes from; if the paper does not say, write ASSUMED and why
scale_source = "instrument definition (0-100)"
direction = "lower_is_better"   # "lower_is_better" or "higher_is_better"
margin = 10                     # equivalence margin in scale units (a between-arm difference that matters)
# where the margin comes from (citation, DOI, and the page or table of the value)
margin_source = "Ostelo RW et al. Spine 2008;33(1):90-4, doi:10.1097/BRS.0b013e31815e3a10: consensus MIC 10 points"
# reference_sd = 16             # SD used to standardise when the data give no baseline SDs; needs the next key
# reference_sd_source = "REPLACE: paper, table, address of the SD you borrow"  # where the SD comes from
"""


# the evidence files written (header only); ipd.csv is left out: few abstracts give patient data
TEMPLATE_LEVELS = ("arm_summary", "contrast", "threshold")


def template_files() -> dict[str, str]:
    """The empty preset of the study writer: file name -> text of ``study.toml`` and the header-only CSVs."""
    files = {"study.toml": STUDY_TOML}
    for level in TEMPLATE_LEVELS:
        files[EVIDENCE_FILES[level]] = evidence_csv(level)
    return files


def write_template(out_dir: Path) -> None:
    """Write ``study.toml`` and header-only evidence CSVs into a new (or empty) folder.

    Raises
    ------
    InputError
        When ``out_dir`` exists and is not an empty folder (nothing is written), or cannot be created.
    """
    out_dir = Path(out_dir)
    if out_dir.exists():
        if not out_dir.is_dir():
            raise InputError(out_dir, "exists and is not a folder; nothing was written")
        if any(out_dir.iterdir()):
            raise InputError(out_dir, "exists and is not empty; nothing was written (a template never overwrites)")
    try:
        # exclusive: fail rather than overwrite should a file appear meanwhile
        write_folder(out_dir, template_files(), exclusive=True)
    except OSError as exc:
        raise InputError(out_dir, f"cannot write the template ({exc.strerror or exc})") from None
