"""The loaded study (:class:`Study`), its loader :func:`load_study` and the contrasts' standard errors."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_stenosis import stats as conversions
from bayes_stenosis.errors import InputError
from bayes_stenosis.resources import resolve_study
from bayes_stenosis.study.checks import check_cross_file, check_rows
from bayes_stenosis.study.reader import empty_frame, read_evidence_csv, read_study_toml
from bayes_stenosis.study.schema import EVIDENCE_FILES, Outcome, StudyFile


@dataclass
class Study:
    """A validated study: design from ``study.toml`` and one typed frame per evidence level.

    Frames carry a ``row`` column with the 1-based row number in their CSV, so later layers can
    point back at the file. Dimensions are named ``arm``, ``time`` (follow-up times only) and
    ``outcome``; see :attr:`coords`.
    """

    folder: Path
    meta: StudyFile
    evidence: dict[str, pd.DataFrame]
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.meta.study.id

    @property
    def arms(self) -> list[str]:
        """Arm ids, reference arm first."""
        return [self.reference_arm, self.new_arm]

    @property
    def new_arm(self) -> str:
        return next(k for k, a in self.meta.arms.items() if a.role == "new")

    @property
    def reference_arm(self) -> str:
        return next(k for k, a in self.meta.arms.items() if a.role == "reference")

    @property
    def outcomes(self) -> list[str]:
        return list(self.meta.outcomes)

    @property
    def times(self) -> list[float]:
        """Follow-up times (the baseline is ``meta.times.baseline``)."""
        return list(self.meta.times.follow_up)

    @property
    def coords(self) -> dict[str, list]:
        return {"arm": self.arms, "time": self.times, "outcome": self.outcomes}

    @property
    def simulated(self) -> bool:
        return self.meta.study.simulated

    def outcome(self, name: str) -> Outcome:
        return self.meta.outcomes[name]

    def arm_sizes(self) -> dict[str, float | None]:
        """Randomised n per arm where known, else ``None``."""
        return {k: a.n_randomised for k, a in self.meta.arms.items()}

    def randomised_arm_sizes(self) -> tuple[dict[str, float], str]:
        """Randomised n per arm for the model and the reproduction, and where it came from.

        Per-arm n from study.toml where every arm has one; otherwise, with a known randomised total, the
        arms without an n share what the known arms leave equally (the usual reading of "39 patients were
        randomised" in a two-arm abstract); otherwise unknown (an empty dict).
        """
        sizes = self.arm_sizes()
        total = self.meta.study.n_randomised_total
        if all(v is not None for v in sizes.values()):
            return {k: float(v) for k, v in sizes.items()}, "randomised n per arm (study.toml)"
        if total is None:
            return {}, "unknown"
        known = {k: float(v) for k, v in sizes.items() if v is not None}
        rest = [k for k in sizes if sizes[k] is None]
        each = (total - sum(known.values())) / len(rest)
        return known | dict.fromkeys(
            rest, each
        ), f"equal split of the randomised total {total} (per-arm n not reported)"

    def usable_arm_summaries(self) -> pd.DataFrame:
        """Arm-summary rows with ``n``, ``mean`` and ``sd`` all present."""
        df = self.evidence["arm_summary"]
        return df[df[["n", "mean", "sd"]].notna().all(axis=1)]

    def incomplete_arm_summaries(self) -> pd.DataFrame:
        """Rows that report some but not all of ``n``, ``mean``, ``sd`` (kept, not used)."""
        df = self.evidence["arm_summary"]
        filled = df[["n", "mean", "sd"]].notna()
        return df[filled.any(axis=1) & ~filled.all(axis=1)]

    def arm_summary_cells(self) -> set[tuple[float, str]]:
        """(time, outcome) follow-up cells whose change can be formed from usable arm summaries
        in *both* arms (a change row, or a baseline and a follow-up score row)."""
        usable = self.usable_arm_summaries()
        cells = set()
        base = self.meta.times.baseline
        for t in self.times:
            for o in self.outcomes:
                ok = True
                for a in self.arms:
                    rows = usable[(usable.arm == a) & (usable.outcome == o)]
                    has_change = ((rows.kind == "change") & (rows.time == t)).any()
                    has_scores = ((rows.kind == "score") & (rows.time == t)).any() and (
                        (rows.kind == "score") & (rows.time == base)
                    ).any()
                    ok &= bool(has_change or has_scores)
                if ok:
                    cells.add((t, o))
        return cells

    def ipd_cells(self) -> set[tuple[float, str]]:
        df = self.evidence["ipd"]
        follow = df[df.time != self.meta.times.baseline]
        return {(float(t), str(o)) for t, o in follow[["time", "outcome"]].drop_duplicates().values}

    def evidence_by_cell(self) -> pd.DataFrame:
        """Which evidence each follow-up (time, outcome) cell uses, one row per cell.

        Priority: ``ipd`` > ``arm_summary`` > ``contrast`` > ``threshold``. Validation has already
        refused double counting between ipd, arm summaries and contrasts; threshold rows of a cell
        with richer evidence (between-arm and within-arm alike) are superseded: kept in the file as
        reported facts, not used (richer evidence of the same patients would be counted twice).
        """
        ipd, arm, con = self.ipd_cells(), self.arm_summary_cells(), set()
        for t, o in self.evidence["contrast"][["time", "outcome"]].values:
            con.add((float(t), str(o)))
        thr = self.evidence["threshold"]
        rows = []
        for t in self.times:
            for o in self.outcomes:
                cell_thr = thr[(thr.time == t) & (thr.outcome == o)]
                if (t, o) in ipd:
                    level = "ipd"
                elif (t, o) in arm:
                    level = "arm_summary"
                elif (t, o) in con:
                    level = "contrast"
                elif len(cell_thr):
                    level = "threshold"
                else:
                    level = "none"
                n_between = int((cell_thr.comparison == "between").sum())
                n_within = int((cell_thr.comparison == "within").sum())
                rows.append(
                    {
                        "time": t,
                        "outcome": o,
                        "evidence": level,
                        "threshold_between_rows": n_between,
                        "threshold_within_rows": n_within,
                        "thresholds_superseded": level in ("ipd", "arm_summary", "contrast") and len(cell_thr) > 0,
                    }
                )
        return pd.DataFrame(rows)

    def levels_present(self) -> list[str]:
        """Evidence levels with at least one usable row."""
        present = []
        if len(self.evidence["ipd"]):
            present.append("ipd")
        if len(self.usable_arm_summaries()):
            present.append("arm_summary")
        if len(self.evidence["contrast"]):
            present.append("contrast")
        if len(self.evidence["threshold"]):
            present.append("threshold")
        return present

    def sha256(self) -> str:
        """Hash of every file in the study folder that the loader read."""
        digest = hashlib.sha256()
        for name in sorted(self.files):
            digest.update(name.encode())
            digest.update(self.files[name].read_bytes())
        return digest.hexdigest()


def load_study(study: str | Path) -> Study:
    """Load and validate a study folder (a bundled id such as ``farpour2022`` or a path).

    Raises
    ------
    InputError
        On the first problem found, naming the file, row and field.
    """
    folder = resolve_study(study)
    toml_path = folder / "study.toml"
    if not folder.is_dir():
        raise InputError(folder, "study folder not found (give a bundled study id or a folder path)")
    if not toml_path.is_file():
        raise InputError(toml_path, "file not found: every study folder needs a study.toml")
    meta = read_study_toml(toml_path)
    files = {"study.toml": toml_path}
    evidence: dict[str, pd.DataFrame] = {}
    for level, name in EVIDENCE_FILES.items():
        path = folder / name
        if path.exists():
            files[name] = path
            evidence[level] = read_evidence_csv(path, level)
            check_rows(path, level, evidence[level], meta)
        else:
            evidence[level] = empty_frame(level)
    known = {"study.toml", *EVIDENCE_FILES.values()}
    for extra in sorted(folder.glob("*.csv")):
        if extra.name not in known:
            raise InputError(
                extra,
                "unknown evidence file (expected one of: " + ", ".join(EVIDENCE_FILES.values()) + ")",
            )
    study_obj = Study(folder=folder, meta=meta, evidence=evidence, files=files)
    check_cross_file(study_obj)
    return study_obj


def contrast_standard_errors(study: Study) -> pd.DataFrame:
    """The contrasts with ``estimate_nmr`` (new minus reference) and its SE, with the method used.

    SE comes from the ``se`` column when given, else from the CI (t with ``df`` when given, else
    normal), else from the exact p-value and the estimate (same rule for the reference
    distribution).
    """
    df = study.evidence["contrast"].copy()
    ses, methods = [], []
    for rec in df.to_dict("records"):
        dof = None if math.isnan(rec["df"]) else rec["df"]
        if not math.isnan(rec["se"]):
            ses.append(rec["se"])
            methods.append("reported SE")
        elif not math.isnan(rec["ci_low"]):
            ses.append(conversions.se_from_ci(rec["ci_low"], rec["ci_high"], rec["ci_level"], df=dof))
            methods.append(f"from {rec['ci_level']:.0%} CI ({f't, df={dof:g}' if dof else 'normal'})")
        else:
            ses.append(conversions.se_from_p(rec["estimate"], rec["p_value"], df=dof))
            methods.append(f"from exact p-value ({f't, df={dof:g}' if dof else 'normal'})")
    sign = np.where(df["direction"] == "new_minus_reference", 1.0, -1.0)
    df["estimate_nmr"] = sign * df["estimate"].to_numpy(dtype=float)
    df["se_derived"] = ses
    df["se_method"] = methods
    return df
