"""``study``: public API (re-exported from its modules)."""

from bayes_stenosis.study.schema import (
    EVIDENCE_FILES,
    SCHEMAS,
    Arm,
    Column,
    KeyRuleError,
    Outcome,
    StudyFile,
    StudyInfo,
    Times,
)
from bayes_stenosis.study.study import Study, contrast_standard_errors, load_study
from bayes_stenosis.study.template import (
    STUDY_TOML,
    TEMPLATE_LEVELS,
    write_template,
)

__all__ = [
    "Arm",
    "Column",
    "EVIDENCE_FILES",
    "KeyRuleError",
    "Outcome",
    "SCHEMAS",
    "STUDY_TOML",
    "Study",
    "StudyFile",
    "StudyInfo",
    "TEMPLATE_LEVELS",
    "Times",
    "contrast_standard_errors",
    "load_study",
    "write_template",
]
