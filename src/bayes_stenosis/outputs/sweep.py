"""The sensitivity sweep a run's answer is read beside: the sweep of the same study files and spec in
``<out>/<study>/sensitivity/`` (both SHA-256 checked), or, when there is none, what making one would
take (the command, its number of fits and its cost estimated from this run's own fit time).

A full sweep is tens of fits (53 for the flagship: about an hour on two cores), so ``fit`` does not run
one; it records the sweep's plan (``sensitivity_plan.json``, written by ``analyses``) so that the report
and ``summarize`` can say what is missing and what it would cost.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from bayes_stenosis.outputs.sources import final_folder, spec_argument, study_argument
from bayes_stenosis.run import RunFolder, published_file

#: The sweep the spec's ``[sensitivity]`` table defines for this study (written into the run by ``fit``).
SWEEP_PLAN_FILE = "sensitivity_plan.json"


def sweep_candidates(run_folder: Path) -> list[Path]:
    """Where a run's sweep may sit: in the run folder itself, or ``<out>/<study>/sensitivity/`` beside it."""
    run_folder = Path(run_folder)
    return [run_folder, run_folder.parent / "sensitivity"]


def matching_sweep(run_folder: Path, run_manifest: dict) -> tuple[Path | None, str | None]:
    """The folder of the sweep made from the same study files and spec as the run (SHA-256 in both
    manifests), and None; or None and why a sweep found there is not this run's; or (None, None).

    A sweep of other data or of an edited spec is never shown as if it were this run's.
    """
    for folder in sweep_candidates(run_folder):
        manifest_path = published_file(folder / "manifest.json")
        tables = [published_file(folder / name) for name in ("sensitivity.csv", "robustness.csv")]
        if manifest_path is None or tables == [None, None]:
            continue
        sweep = json.loads(manifest_path.read_text())
        differs = [
            what
            for what, key in (("study files", "study"), ("spec", "spec"))
            if (sweep.get(key) or {}).get("sha256") != (run_manifest.get(key) or {}).get("sha256")
        ]
        if not differs:
            return folder, None
        return None, f"the sweep in {folder} was made from other {' and '.join(differs)} (SHA-256 differ)"
    return None, None


def sweep_command(manifest: dict, folder: Path) -> str:
    """The ``bayes-stenosis sensitivity`` command whose sweep lands beside this run folder."""
    root = final_folder(Path(folder)).parent.parent
    argv = ["bayes-stenosis", "sensitivity", study_argument(manifest), "--model", spec_argument(manifest)]
    return shlex.join([*argv, "--out", str(root)])


#: The sweep's axes in words (``FitConfig`` fields).
AXIS_LABELS = {
    "prior_set": "prior set",
    "correlation": "baseline-follow-up correlation",
    "pooling": "outcome pooling",
    "between_test": 'test behind "P>0.05"',
    "followup_sd_ratio": "follow-up / baseline SD ratio",
    "analysed_fraction": "share of patients analysed",
}


def sweep_plan(run: RunFolder) -> dict | None:
    """What the missing sweep would be: its command, number of fits and estimated minutes (each fit about
    as long as this run's fit without its compile), from ``sensitivity_plan.json``; None without that file."""
    if not run.has(SWEEP_PLAN_FILE):
        return None
    plan = run.read_json(SWEEP_PLAN_FILE)
    timings = run.manifest.get("timings_seconds", {})
    per_fit = max(float(timings.get("fit_total", 0.0)) - float(timings.get("compile", 0.0)), 0.0)
    n_fits = int(plan["n_fits"])
    return {
        "command": sweep_command(run.manifest, run.path),
        "n_fits": n_fits,
        "axes": [
            {
                "axis": AXIS_LABELS.get(a["axis"], a["axis"]),
                "levels": ["the spec's" if v == "spec" else v for v in a["values"]],
            }
            for a in plan.get("axes", [])
        ],
        "per_fit_seconds": round(per_fit),
        "minutes": round(n_fits * per_fit / 60) if per_fit else None,
    }


def plan_text(plan: dict) -> str:
    """One sentence: the command, the fits and their estimated cost."""
    cost = (
        f", about {plan['minutes']} min ({plan['n_fits']} x this run's {plan['per_fit_seconds']} s per fit, plus a "
        "compile per model structure unless cached)"
        if plan["minutes"] is not None
        else ""
    )
    return f"`{plan['command']}` refits the model {plan['n_fits']} times{cost}"


def missing_sweep_note(run: RunFolder) -> str:
    """Without a sweep of this run beside it: why (none, or one of other inputs), and what making one takes."""
    _, mismatch = matching_sweep(run.path, run.manifest)
    plan = sweep_plan(run)
    return (
        "not yet checked against its assumptions"
        + (f" ({mismatch})" if mismatch else "")
        + ": "
        + (plan_text(plan) if plan else f"`{sweep_command(run.manifest, run.path)}`")
        + "; fit, summarize and the report then show the range of each P(equiv)"
    )
