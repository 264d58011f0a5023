"""Small in-memory builders for tests and notebooks: study folders and spec variants (no sampling here)."""

from __future__ import annotations

import csv
from pathlib import Path

from bayes_stenosis.spec import ModelSpec, load_spec

TEST_SOURCE = "TEST FIXTURE: simulated for tests, not trial data"

HEADERS = {
    "thresholds.csv": [
        "outcome",
        "time",
        "comparison",
        "arm",
        "relation",
        "alpha",
        "direction",
        "test",
        "p_value",
        "source",
        "note",
    ],
    "contrasts.csv": [
        "outcome",
        "time",
        "measure",
        "direction",
        "estimate",
        "ci_low",
        "ci_high",
        "ci_level",
        "se",
        "p_value",
        "df",
        "source",
        "note",
    ],
    "arm_summaries.csv": ["arm", "outcome", "time", "kind", "n", "mean", "sd", "source", "note"],
}


def write_study(
    folder: Path,
    *,
    outcomes: dict[str, dict] | None = None,
    follow_up: tuple[float, ...] = (4.0,),
    n_per_arm: tuple[int | None, int | None] = (20, 20),
    n_total: int | None = None,
    rows: dict[str, list[dict]] | None = None,
) -> Path:
    """Write a minimal valid study folder; ``rows`` maps a CSV file name to row dicts."""
    folder.mkdir(parents=True, exist_ok=True)
    outcomes = outcomes or {"ODI": {"instrument": "ODI", "scale_max": 100, "margin": 10, "reference_sd": 16}}
    lines = [
        "schema_version = 1",
        "[study]",
        'id = "test_study"',
        'title = "test study"',
        f'citation = "{TEST_SOURCE}"',
        "simulated = true",
    ]
    if n_total is not None:
        lines += [f"n_randomised_total = {n_total}", f'n_randomised_total_source = "{TEST_SOURCE}"']
    for arm, role, n in (
        ("reference_arm", "reference", n_per_arm[0]),
        ("new_arm", "new", n_per_arm[1]),
    ):
        lines += [f"[arms.{arm}]", f'label = "{arm}"', f'role = "{role}"']
        if n is not None:
            lines += [f"n_randomised = {n}", f'n_source = "{TEST_SOURCE}"']
    lines += [
        "[times]",
        "baseline = 0",
        f"follow_up = [{', '.join(str(t) for t in follow_up)}]",
        f'source = "{TEST_SOURCE}"',
    ]
    for name, o in outcomes.items():
        lines += [
            f"[outcomes.{name}]",
            f'label = "{name}"',
            f'instrument = "{o.get("instrument", "other")}"',
            'unit = "points"',
            "scale_min = 0",
            f"scale_max = {o.get('scale_max', 100)}",
            f'scale_source = "{TEST_SOURCE}"',
            'direction = "lower_is_better"',
            f"margin = {o['margin']}",
            f'margin_source = "{TEST_SOURCE}"',
        ]
        if o.get("reference_sd") is not None:
            lines += [
                f"reference_sd = {o['reference_sd']}",
                f'reference_sd_source = "{TEST_SOURCE}"',
            ]
    (folder / "study.toml").write_text("\n".join(lines) + "\n")
    for name, records in (rows or {}).items():
        with open(folder / name, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=HEADERS[name], lineterminator="\n")
            writer.writeheader()
            for rec in records:
                writer.writerow({"source": TEST_SOURCE, **rec})
    return folder


def spec_variant(**changes) -> ModelSpec:
    """The default spec with nested fields replaced, e.g. ``correlation={"fixed_baseline_followup": .5}``."""
    spec, _ = load_spec("default")
    update = {}
    for section, values in changes.items():
        current = getattr(spec, section)
        # re-validate so nested values (e.g. a Beta prior given as a dict) become typed models
        update[section] = (
            type(current).model_validate(current.model_dump() | values) if isinstance(values, dict) else values
        )
    return spec.model_copy(update=update)
