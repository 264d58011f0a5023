"""``report.html``: one self-contained HTML file per run folder, for a reviewer to read and email.

The report reads only the run folder (``manifest.json``, the CSVs, ``posterior.nc``, ``plots/``,
``inputs/``, and optional results other commands put there or beside it: ``reproduce.csv``,
``missing_ipd.csv``, ``../sensitivity/sensitivity.csv`` or ``sensitivity.csv``). Images are
embedded as base64 PNG data URIs and the style sheet is inline: the page makes no network request.

Sections follow the Bayesian Analysis Reporting Guidelines (Kruschke 2021, Nat Hum Behav
5:1282-91): question and data with provenance, model and priors with justification, prior
predictive check, computation and diagnostics, posterior predictive check, results and decisions,
sensitivity, frequentist reproduction, reproducibility. Templates are Jinja2 files shipped in
``bayes_stenosis/templates``.
"""

from __future__ import annotations

import base64
import json
import math
import shlex
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_stenosis import __version__
from bayes_stenosis.run import RunFolder, load_run, published_file

REPORT_NAME = "report.html"

#: Plots in the order the report shows them: (file, caption).
COMPUTATION_PLOTS = (
    (
        "energy.png",
        "Energy plot: the marginal energy and the energy-transition distributions should have similar "
        "widths; E-BFMI per chain in the legend (< 0.3 suggests poor exploration).",
    ),
)


# ---------------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------------


def _png_data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _fmt(value, digits: int = 3) -> str:
    """A table cell: numbers to ``digits`` significant digits, NaN/None empty, text escaped later."""
    if value is None:
        return ""
    if isinstance(value, bool | np.bool_):
        return "yes" if value else ""
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        if not math.isfinite(float(value)):
            return ""
        v = float(value)
        if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
            return f"{v:.{digits}e}"
        if v == int(v) and abs(v) < 1e5:
            return f"{int(v)}"
        return f"{v:.{digits}g}" if abs(v) < 1 else f"{v:.{max(digits, len(str(int(abs(v)))))}g}"
    return str(value)


def _table(frame: pd.DataFrame | None, columns: list[str] | None = None, digits: int = 3) -> dict | None:
    """``{"columns": [...], "rows": [[...], ...]}`` for the template (already formatted)."""
    if frame is None or not len(frame):
        return None
    if columns is not None:
        frame = frame[[c for c in columns if c in frame.columns]]
    special = {"r_hat": ".3f", "ess_bulk": ".0f", "ess_tail": ".0f"}

    def cell(column, value):
        spec = special.get(str(column))
        if spec and isinstance(value, float | np.floating) and math.isfinite(float(value)):
            return format(float(value), spec)
        return _fmt(value, digits)

    rows = [[cell(c, v) for c, v in zip(frame.columns, rec, strict=True)] for rec in frame.itertuples(index=False)]
    return {"columns": [str(c) for c in frame.columns], "rows": rows}


def _read_csv(path: Path | None) -> pd.DataFrame | None:
    if path is None or not path.is_file():
        return None
    try:
        return pd.read_csv(path, keep_default_na=True)
    except (pd.errors.EmptyDataError, pd.errors.ParserError):
        return None


# ---------------------------------------------------------------------------------------------
# the spec's comments are the priors' justification
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# provenance: every number's source
# ---------------------------------------------------------------------------------------------


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
        r["value"] = _fmt(r["value"]) if not isinstance(r["value"], str) else r["value"]
    return rows


def evidence_files(folder: Path) -> list[dict]:
    """The study's evidence CSVs copied into the run (every row with its source column)."""
    out = []
    for path in sorted((folder / "inputs" / "study").glob("*.csv")):
        frame = _read_csv(path)
        if frame is None:
            out.append({"name": path.name, "table": None, "note": "empty file", "n_rows": 0})
            continue
        frame.insert(0, "row", np.arange(2, len(frame) + 2))  # spreadsheet row (header is row 1)
        note = ""
        limit = 60
        if len(frame) > limit:
            note = f"first {limit} of {len(frame)} rows shown; the full file is inputs/study/{path.name}"
        out.append({"name": path.name, "table": _table(frame.head(limit)), "note": note, "n_rows": len(frame)})
    return out


# ---------------------------------------------------------------------------------------------
# numbers computed from posterior.nc for the report
# ---------------------------------------------------------------------------------------------


def prior_vs_posterior(idata) -> pd.DataFrame | None:
    """Per cell: prior and posterior SD of delta (natural units) and their ratio (how much the data
    narrowed the prior: 1 = the data added nothing)."""
    if "prior" not in idata.groups() or "delta_natural" not in idata.prior:
        return None
    post, prior = idata.posterior["delta_natural"], idata.prior["delta_natural"]
    rows = []
    for t in post.coords["time"].values:
        for o in post.coords["outcome"].values:
            p = post.sel(time=t, outcome=o).values.ravel()
            q = prior.sel(time=t, outcome=o).values.ravel()
            # robust spread: the Student-t prior has heavy tails, so use the 95 % central width
            wp = float(np.subtract(*np.quantile(p, [0.975, 0.025])))
            wq = float(np.subtract(*np.quantile(q, [0.975, 0.025])))
            rows.append(
                {
                    "time": float(t),
                    "outcome": str(o),
                    "prior_95_width": wq,
                    "posterior_95_width": wp,
                    "width_ratio": wp / wq if wq > 0 else np.nan,
                }
            )
    return pd.DataFrame(rows)


def prior_predictive_ranges(idata, study_toml: dict, units: dict[str, str]) -> pd.DataFrame | None:
    """Prior predictive change from baseline per outcome vs the range the scale allows (BARG 1E)."""
    if "prior" not in idata.groups() or "change_natural" not in idata.prior:
        return None
    change = idata.prior["change_natural"]
    rows = []
    for o in change.coords["outcome"].values:
        spec = study_toml.get("outcomes", {}).get(str(o), {})
        lo, hi = spec.get("scale_min"), spec.get("scale_max")
        x = change.sel(outcome=o).values.ravel()
        width = (hi - lo) if lo is not None and hi is not None else np.nan
        rows.append(
            {
                "outcome": str(o),
                "unit": units.get(str(o), ""),
                "prior_change_2.5%": float(np.quantile(x, 0.025)),
                "prior_change_50%": float(np.quantile(x, 0.5)),
                "prior_change_97.5%": float(np.quantile(x, 0.975)),
                "possible_change": f"-{width:g} to +{width:g}" if np.isfinite(width) else "",
                "share_impossible": float(np.mean(np.abs(x) > width)) if np.isfinite(width) else np.nan,
            }
        )
    return pd.DataFrame(rows)


def ppc_table(idata, folder: Path) -> pd.DataFrame | None:
    """Observed value, replicate median and 95 % interval, and P(replicate >= observed) per element;
    for threshold statements P(event) under the posterior and under the prior."""
    labels = _read_csv(folder / "observed_quantities.csv")
    rows = []
    if "posterior_predictive" in idata.groups() and "observed_data" in idata.groups():
        from bayes_stenosis.outputs.plots import item_labels, to_natural_units

        for var in idata.posterior_predictive.data_vars:
            if var == "threshold_event" or var not in idata.observed_data:
                continue
            obs = idata.observed_data[var].values.ravel()
            rep = idata.posterior_predictive[var].values.reshape(-1, obs.size)
            items = item_labels(var, obs.size, labels, list(range(obs.size)))
            for i, it in enumerate(items):
                r = to_natural_units(rep[:, i], it["transform"], it["scale"])
                o = float(to_natural_units(np.array(obs[i]), it["transform"], it["scale"]))
                rows.append(
                    {
                        "quantity": it["label"],
                        "unit": it.get("unit", ""),
                        "observed": o,
                        "replicate_median": float(np.median(r)),
                        "replicate_2.5%": float(np.quantile(r, 0.025)),
                        "replicate_97.5%": float(np.quantile(r, 0.975)),
                        "P(rep >= obs)": float(np.mean(r >= o)),
                    }
                )
    if "threshold_log_prob" in idata.posterior:
        from bayes_stenosis.outputs.plots import item_labels

        lp = idata.posterior["threshold_log_prob"]
        coords = lp.coords["threshold_row"].values
        items = item_labels("threshold_event", len(coords), labels, coords)
        post = np.exp(lp).mean(("chain", "draw")).values
        prior = (
            np.exp(idata.prior["threshold_log_prob"]).mean(("chain", "draw")).values
            if "prior" in idata.groups() and "threshold_log_prob" in idata.prior
            else np.full(len(coords), np.nan)
        )
        for it, p, q in zip(items, post, prior, strict=True):
            rows.append(
                {
                    "quantity": it["label"],
                    "unit": "event",
                    "observed": 1.0,
                    "P(event), posterior": float(p),
                    "P(event), prior": float(q),
                }
            )
    return pd.DataFrame(rows) if rows else None


# ---------------------------------------------------------------------------------------------
# reproducibility
# ---------------------------------------------------------------------------------------------


def final_folder(folder: Path) -> Path:
    """The run folder's final path (``fit`` renders the report inside ``.<name>.tmp-XXXX`` first)."""
    name = folder.name
    if name.startswith(".") and ".tmp-" in name:
        return folder.with_name(name[1:].split(".tmp-", 1)[0])
    return folder


def rerun_command(manifest: dict, folder: Path) -> str:
    """The ``bayes-stenosis fit`` command that recreates this run (same numbers with the same versions)."""
    folder = final_folder(Path(folder))
    study = manifest["study"]
    study_arg = study["folder"]
    try:
        from bayes_stenosis.resources import bundled_study_ids, resolve_study

        if (
            study["id"] in bundled_study_ids()
            and Path(resolve_study(study["id"])).resolve() == Path(study["folder"]).resolve()
        ):
            study_arg = study["id"]
    except (FileNotFoundError, OSError):
        pass
    s = manifest["sampler"]
    argv = [
        "bayes-stenosis",
        "fit",
        study_arg,
        "--model",
        str(manifest["spec"]["path"]),
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


# ---------------------------------------------------------------------------------------------
# the context and the rendering
# ---------------------------------------------------------------------------------------------


def _optional_results(folder: Path) -> dict:
    out: dict = {}
    for candidate in (folder / "sensitivity.csv", folder.parent / "sensitivity" / "sensitivity.csv"):
        # the sweep's folder has its own manifest: its files are checked against it before they are shown
        frame = _read_csv(published_file(candidate))
        if frame is not None:
            png = published_file(candidate.with_name("sensitivity.png"))
            robust = _read_csv(published_file(candidate.with_name("robustness.csv")))
            out["sensitivity"] = {
                "path": str(candidate),
                "table": _table(frame.head(400)),
                "n_rows": len(frame),
                "image": _png_data_uri(png) if png is not None else None,
                "robustness": None if robust is None else _table(robust),
            }
            break
    reproduce = _read_csv(folder / "reproduce.csv")
    if reproduce is not None:
        md = folder / "reproduce.md"
        out["reproduce"] = {"table": _table(reproduce), "notes": md.read_text() if md.is_file() else ""}
    missing = _read_csv(folder / "missing_ipd.csv")
    if missing is not None:
        out["missing_ipd"] = _table(missing)
    return out


def build_context(run: str | Path | RunFolder) -> dict:
    """Everything the template shows, from the run folder only (its files checked as they are read)."""
    from bayes_stenosis.diagnostics import near_threshold_note

    run = run if isinstance(run, RunFolder) else load_run(run)
    folder = run.path
    manifest = run.manifest
    idata = run.idata
    diag = run.diagnostics()
    decisions = _read_csv(folder / "decisions.csv")
    contrasts = _read_csv(folder / "contrasts.csv")
    evidence = _read_csv(folder / "evidence.csv")
    spec_path = folder / "inputs" / "spec.toml"
    spec_text = spec_path.read_text() if spec_path.is_file() else None
    study_path = folder / "inputs" / "study" / "study.toml"
    study_toml = tomllib.loads(study_path.read_text()) if study_path.is_file() else {}
    units = manifest.get("units", {})
    outcomes = list(manifest["margins"])
    instruments = {o: study_toml.get("outcomes", {}).get(o, {}).get("instrument", "other") for o in outcomes}
    arms = manifest["arms"]
    arm_labels = {k: v.get("label", k) for k, v in study_toml.get("arms", {}).items()}
    levels = sorted(set(evidence["evidence"])) if evidence is not None else []
    threshold_only = levels == ["threshold"]

    plots_dir = folder / "plots"

    def img(name: str, caption: str) -> dict | None:
        path = plots_dir / name
        return {"name": name, "src": _png_data_uri(path), "caption": caption} if path.is_file() else None

    trace_rank = []
    for path in sorted(plots_dir.glob("trace_*.png")):
        group = path.stem.removeprefix("trace_")
        pretty = group.replace("_", " ")
        trace_rank.append(
            img(
                path.name,
                f"Trace ({pretty}): left, per-chain densities (should overlap); right, "
                "draws in order (should look like stationary noise, chains mixed).",
            )
        )
        if (plots_dir / f"rank_{group}.png").is_file():
            trace_rank.append(
                img(
                    f"rank_{group}.png",
                    f"Rank plots ({pretty}): histograms of each chain's ranks among all draws; uniform = chains agree.",
                )
            )

    dec_cols = [
        "scope",
        "time",
        "outcome",
        "evidence",
        "margin",
        "prob_equivalence",
        "mcse_prob_equivalence",
        "prob_equivalence_prior",
        "prob_noninferiority",
        "prob_noninferiority_prior",
        "prob_superiority",
        "prob_superiority_prior",
        "prob_harm_beyond_margin",
        "prob_not_equivalent",
        "decision",
        "decision_within_2_mcse_of_threshold",
    ]
    con_cols = [
        "time",
        "outcome",
        "evidence",
        "mean_natural",
        "median_natural",
        "lower_natural",
        "upper_natural",
        "mcse_mean_natural",
        "mcse_lower_natural",
        "mcse_upper_natural",
        "mean_std",
        "lower_std",
        "upper_std",
    ]
    params = diag.parameters
    param_cols = ["quantity", "mean", "sd", "r_hat", "ess_bulk", "ess_tail", "mcse_mean", "mcse_sd"]
    prob_cols = ["quantity", "mean", "mcse_mean", "r_hat", "ess_bulk", "constant", "near_threshold"]
    pvp = prior_vs_posterior(idata)
    cells = decisions[decisions["scope"] == "cell"] if decisions is not None else None
    prior_carry = None
    if cells is not None and "prob_equivalence_prior" in cells:
        carry = cells[["time", "outcome", "margin", "prob_equivalence_prior", "prob_equivalence"]].copy()
        carry["change_from_prior"] = carry["prob_equivalence"] - carry["prob_equivalence_prior"]
        if pvp is not None:
            carry = carry.merge(pvp[["time", "outcome", "width_ratio"]], on=["time", "outcome"], how="left")
            carry = carry.rename(columns={"width_ratio": "posterior/prior 95% width"})
        prior_carry = carry

    sampler = diag.sampler.rename(columns={"ebfmi": "E-BFMI", "treedepth_saturation_fraction": "tree-depth saturation"})
    context = {
        "package_version": __version__,
        "manifest": manifest,
        "manifest_json": json.dumps(manifest, indent=2),
        "study": manifest["study"],
        "study_toml": study_toml,
        "arms": arms,
        "arm_labels": arm_labels,
        "outcomes": outcomes,
        "units": units,
        "margins": manifest["margins"],
        "levels": levels,
        "threshold_only": threshold_only,
        "simulated": bool(manifest["study"].get("simulated")),
        "interval": manifest["interval"],
        "rule_text": manifest["decision_rule"]["text"],
        "threshold": manifest["decision_rule"]["threshold"],
        "evidence_table": _table(evidence),
        "sources": study_sources(study_toml),
        "evidence_files": evidence_files(folder),
        "notes": study_toml.get("study", {}).get("notes", []),
        "pages_read": study_toml.get("study", {}).get("pages_read", []),
        "priors": prior_rows(manifest, spec_text, outcomes, instruments),
        "spec_text": spec_text,
        "scale_rows": [
            {"outcome": o, "value": _fmt(v["value"]), "unit": units.get(o, ""), "source": v["source"]}
            for o, v in manifest.get("scale", {}).items()
        ],
        "hierarchy": manifest["spec"]["content"].get("hierarchy", {}),
        "prior_ranges": _table(prior_predictive_ranges(idata, study_toml, units)),
        "prior_predictive_img": img(
            "prior_predictive.png",
            "Prior predictive check: what the model expects to "
            "observe before seeing the data (bars: 50 % and 95 % of replicates; diamond: "
            "the observed value; threshold statements: prior probability of each).",
        ),
        "prior_posterior_img": img(
            "prior_posterior.png",
            "Prior (black outline) vs posterior (blue) of each "
            "treatment difference, natural units; the equivalence margin is shaded.",
        ),
        "verdict": diag.verdict,
        "near_threshold_note": near_threshold_note(diag.decision_probabilities),
        "sampler_settings": manifest["sampler"],
        "sampler_table": _table(sampler),
        "param_table": _table(params, param_cols),
        "n_params": len(params),
        "prob_table": _table(diag.decision_probabilities, prob_cols),
        "computation_imgs": [i for i in (img(n, c) for n, c in COMPUTATION_PLOTS) if i] + [i for i in trace_rank if i],
        "ppc_img": img(
            "ppc.png",
            "Posterior predictive check: each observed summary (red diamond) against the "
            "replicates from the posterior (bars: 50 % and 95 %). Threshold statements are events: the "
            "bar is the posterior probability that a replicated trial reports the statement (observed: "
            "1), the black tick the same under the prior.",
        ),
        "ppc_table": _table(ppc_table(idata, folder)),
        "contrasts_table": _table(contrasts, con_cols),
        "decisions_table": _table(decisions, dec_cols),
        "prior_carry": _table(prior_carry),
        "forest_img": img(
            "forest.png",
            f"Posterior mean and {manifest['interval']['prob']:.0%} "
            f"{manifest['interval']['kind'].upper()} of each treatment difference, natural units; the "
            "equivalence margin is the green band.",
        ),
        "margin_img": img(
            "margin_curves.png",
            "Margin curves: posterior probability of equivalence as the margin "
            "varies from 0 to 2 x the default (dashed); the dotted red line is the decision threshold.",
        ),
        "versions": manifest.get("versions", {}),
        "rerun": rerun_command(manifest, folder),
        "timings": manifest.get("timings_seconds", {}),
        "run_folder": str(final_folder(folder)),
        "files": sorted(p.name for p in folder.iterdir() if p.is_file()),
    }
    context.update(_optional_results(folder))
    return context
