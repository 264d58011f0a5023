"""Read a run folder back: :func:`load_run` -> :class:`RunFolder` (the manifest, the tables, the
InferenceData), for notebooks, the report and the CLI."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import arviz as az
import pandas as pd

from bayes_stenosis.errors import RunFolderError
from bayes_stenosis.run.folder import check_run_folder, read_manifest


@dataclass(frozen=True)
class RunFolder:
    """A complete run folder; tables and draws are read on first use."""

    path: Path

    @cached_property
    def manifest(self) -> dict:
        return read_manifest(self.path)

    def table(self, name: str) -> pd.DataFrame:
        """``<name>.csv`` of the run (``decisions``, ``contrasts``, ``margin_curves``, ``diagnostics``, ...)."""
        path = self.path / f"{name}.csv"
        if not path.is_file():
            raise RunFolderError(path, "not in this run folder")
        try:
            return pd.read_csv(path)
        except (pd.errors.EmptyDataError, pd.errors.ParserError) as exc:
            raise RunFolderError(path, f"unreadable CSV: {exc}") from None

    @property
    def decisions(self) -> pd.DataFrame:
        return self.table("decisions")

    @property
    def contrasts(self) -> pd.DataFrame:
        return self.table("contrasts")

    @cached_property
    def idata(self) -> az.InferenceData:
        """The run's InferenceData (``posterior.nc``)."""
        try:
            return az.from_netcdf(self.path / "posterior.nc")
        except OSError as exc:
            raise RunFolderError(self.path / "posterior.nc", f"unreadable NetCDF: {exc}") from None

    @property
    def verdict(self) -> str:
        """The diagnostics verdict: ``ok``, ``warning`` or ``fail``."""
        return self.manifest["diagnostics_verdict"]["status"]


def load_run(path: str | Path) -> RunFolder:
    """Open a complete run folder (one-line :class:`RunFolderError` otherwise)."""
    return RunFolder(check_run_folder(path))
