"""Where every number of a run comes from, for the report: the spec's comments as the priors'
justification, the sourced numbers of study.toml, the evidence files, and the command that reruns the run."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import numpy as np

from bayes_stenosis.outputs.tables import fmt, read_csv_or_none, table_context
from bayes_stenosis.resources import bundled_study_ids, resolve_spec, resolve_study


def spec_comments(text: str) -> dict[str, str]:
    """Comments of a TOML spec by key: ``"table.key" -> comment text`` (the comment lines just above
    the key, or above its table header for ``"table"``)."""
    out: dict[str, str] = {}
    pending: list[str] = []
    table = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#"):
            pending.append(line.lstrip("#").strip())
            continue
        if not line:
            continue
        if line.startswith("["):
            table = line.strip("[]").strip()
            if pending:
                out[table] = " ".join(pending)
        elif "=" in line:
            key = line.split("=", 1)[0].strip()
            full = f"{table}.{key}" if table else key
            if pending:
                out[full] = " ".join(pending)
        pending = []
    return out


def _flatten(prefix: str, value) -> list[tuple[str, str]]:
    if isinstance(value, dict):
        items = []
        for k, v in value.items():
            items += _flatten(f"{prefix}.{k}" if prefix else k, v)
        return items
    return [(prefix, json.dumps(value) if not isinstance(value, str) else value)]


def prior_rows(manifest: dict, spec_text: str | None, outcomes: list[str], instruments: dict[str, str]) -> list[dict]:
    """One row per prior-relevant spec entry: name, value, justification (the spec's comment)."""
    content = manifest["spec"]["content"]
    comments = spec_comments(spec_text) if spec_text else {}
    prior_set = manifest["prior_set"]
    # the comments above the prior set's table header and inside the table (e.g. the Bartos citation)
    table = f"prior_sets.{prior_set}"
    why_prior = " ".join(v for k, v in comments.items() if k == table or k.startswith(table + "."))
    rows = [
        {
            "name": f"Delta[t] (treatment difference per time, SMD): prior set '{prior_set}'",
            "value": manifest["prior_on_Delta"]["text"],
            "why": why_prior,
        }
    ]

    def add(table: str, keys: list[str] | None = None) -> None:
        section = content.get(table, {})
        for key in keys or list(section):
            if key not in section:
                continue
            for name, value in _flatten(key, section[key]):
                why = comments.get(f"{table}.{key}", "")
                rows.append({"name": f"{table}.{name}", "value": value, "why": why})

    add("hierarchy")
    used = sorted({instruments.get(o, "other") for o in outcomes})
    add(
        "correlation",
        [*used, "time", "outcome_structure", "outcome", "max_error_correlation", "fixed_baseline_followup"],
    )
    add("scale")
    return rows


def study_sources(study_toml: dict) -> list[dict]:
    """``(where, value, source)`` for every sourced number in study.toml."""
    rows = []
    study = study_toml.get("study", {})
    if "n_randomised_total" in study:
        rows.append(
            {
                "where": "study.n_randomised_total",
                "value": study["n_randomised_total"],
                "source": study.get("n_randomised_total_source", ""),
            }
        )
    if "allocation" in study:
        rows.append({"where": "study.allocation", "value": "", "source": study["allocation"]})
    for arm, spec in study_toml.get("arms", {}).items():
        if "n_randomised" in spec:
            rows.append(
                {"where": f"arms.{arm}.n_randomised", "value": spec["n_randomised"], "source": spec.get("n_source", "")}
            )
    times = study_toml.get("times", {})
    if times:
        rows.append(
            {
                "where": "times (weeks)",
                "value": f"baseline {times.get('baseline')}, follow-up {times.get('follow_up')}",
                "source": times.get("source", ""),
            }
        )
    for name, o in study_toml.get("outcomes", {}).items():
        for key, src in (("margin", "margin_source"), ("reference_sd", "reference_sd_source")):
            if key in o:
                rows.append({"where": f"outcomes.{name}.{key}", "value": o[key], "source": o.get(src, "")})
        if "scale_min" in o or "scale_max" in o:
            rows.append(
                {
                    "where": f"outcomes.{name}.scale",
                    "value": f"{o.get('scale_min')}-{o.get('scale_max')} {o.get('unit', '')}",
                    "source": o.get("scale_source", ""),
                }
            )
    for r in rows:
        r["value"] = fmt(r["value"]) if not isinstance(r["value"], str) else r["value"]
    return rows


def evidence_files(folder: Path) -> list[dict]:
    """The study's evidence CSVs copied into the run (every row with its source column)."""
    out = []
    for path in sorted((folder / "inputs" / "study").glob("*.csv")):
        frame = read_csv_or_none(path)
        if frame is None:
            out.append({"name": path.name, "table": None, "note": "empty file", "n_rows": 0})
            continue
        frame.insert(0, "row", np.arange(2, len(frame) + 2))  # spreadsheet row (header is row 1)
        note = ""
        limit = 60
        if len(frame) > limit:
            note = f"first {limit} of {len(frame)} rows shown; the full file is inputs/study/{path.name}"
        out.append({"name": path.name, "table": table_context(frame.head(limit)), "note": note, "n_rows": len(frame)})
    return out


def final_folder(folder: Path) -> Path:
    """The run folder's final path (``fit`` renders the report inside ``.<name>.tmp-XXXX`` first)."""
    name = folder.name
    if name.startswith(".") and ".tmp-" in name:
        return folder.with_name(name[1:].split(".tmp-", 1)[0])
    return folder


def study_argument(manifest: dict) -> str:
    """The study as a command argument: the bundled id when the run used the bundled folder, else its path."""
    study = manifest["study"]
    try:
        if (
            study["id"] in bundled_study_ids()
            and Path(resolve_study(study["id"])).resolve() == Path(study["folder"]).resolve()
        ):
            return study["id"]
    except (FileNotFoundError, OSError):
        pass
    return study["folder"]


def spec_argument(manifest: dict) -> str:
    """The spec as a command argument: the bundled name (``default``) when the run used a bundled spec, else
    its path."""
    path = str(manifest["spec"]["path"])
    name = manifest["spec"].get("name") or Path(path).stem
    try:
        if Path(path).resolve() == resolve_spec(name).resolve():
            return name
    except OSError:
        pass
    return path


def rerun_command(manifest: dict, folder: Path) -> str:
    """The ``bayes-stenosis fit`` command that recreates this run (same numbers with the same versions)."""
    folder = final_folder(Path(folder))
    s = manifest["sampler"]
    argv = [
        "bayes-stenosis",
        "fit",
        study_argument(manifest),
        "--model",
        spec_argument(manifest),
        "--prior",
        manifest["prior_set"],
        "--seed",
        str(s["seed"]),
        "--chains",
        str(s["chains"]),
        "--draws",
        str(s["draws"]),
        "--tune",
        str(s["tune"]),
        "--sampler",
        str(s["name"]),
    ]
    for name, value in (manifest.get("margin_overrides") or {}).items():
        argv += ["--margin", f"{name}={value:g}"]
    argv += ["--out", str(folder.parent.parent), "--name", folder.name]
    return " ".join(shlex.quote(a) for a in argv)
