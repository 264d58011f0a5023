"""Locate the bundled studies (``data/``) and model specs (``models/``).

In a wheel they live in ``bayes_stenosis/_bundled``; in a source checkout (editable install) they are
the repository's top-level folders. Explicit paths always override.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def _find(name: str) -> Path:
    bundled = _PACKAGE_DIR / "_bundled" / name
    if bundled.is_dir():
        return bundled
    checkout = _PACKAGE_DIR.parent.parent / name  # src/bayes_stenosis -> repository root
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"bundled folder {name!r} not found next to the package ({_PACKAGE_DIR})")


def data_dir() -> Path:
    """Folder holding one sub-folder per bundled study."""
    return _find("data")


def models_dir() -> Path:
    """Folder holding the bundled model specifications (TOML)."""
    return _find("models")


def bundled_study_ids() -> list[str]:
    """Ids of the bundled studies (folders with a ``study.toml``), sorted."""
    return sorted(p.name for p in data_dir().iterdir() if (p / "study.toml").is_file())


def resolve_study(study: str | Path) -> Path:
    """Map a bundled study id or a path to a study folder (not yet validated)."""
    candidate = Path(study)
    if candidate.is_file() and candidate.name == "study.toml":
        return candidate.parent  # the study's own file given instead of its folder
    if candidate.is_dir() or candidate.suffix or "/" in str(study) or candidate.exists():
        return candidate
    return data_dir() / str(study)


def resolve_spec(spec: str | Path) -> Path:
    """Map a bundled spec name (``default``) or a path to a TOML file."""
    candidate = Path(spec)
    if candidate.suffix == ".toml" or candidate.exists():
        return candidate
    return models_dir() / f"{spec}.toml"
