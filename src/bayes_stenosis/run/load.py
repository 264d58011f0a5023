"""Read a run folder back: :func:`load_run` -> :class:`RunFolder` (the manifest, the tables, the
InferenceData), for notebooks, the report and the CLI.

Every file is checked against the manifest's checksums before it is read (once per
:class:`RunFolder`), so a damaged or truncated file is a one-line :class:`RunFolderError` naming it,
never a traceback or a silently wrong table. :meth:`RunFolder.verify` checks the whole folder.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import arviz as az
import pandas as pd
import xarray as xr

from bayes_stenosis.diagnostics import RunDiagnostics, load_run_diagnostics
from bayes_stenosis.errors import RunFolderError, UnverifiedRunWarning
from bayes_stenosis.run.folder import check_run_folder, read_manifest
from bayes_stenosis.run.idata import PRIOR_DELTA_FILE
from bayes_stenosis.run.integrity import FILES_KEY, FileProblem, check_file, verify_folder
from bayes_stenosis.run.paths import MANIFEST_NAME


@dataclass(frozen=True)
class RunFolder:
    """A complete run folder; tables and draws are read, and checked, on first use.

    ``staging=True`` is the writer's own view of its temporary folder (plots and the report are drawn
    from it before it is published): no checksums yet, so files get the structural checks only.
    """

    path: Path
    staging: bool = False
    checked: dict[str, str | None] = field(default_factory=dict, init=False, repr=False, compare=False)

    @cached_property
    def manifest(self) -> dict:
        return read_manifest(self.path, staging=self.staging)

    def reread(self) -> RunFolder:
        """The same folder with its manifest and tables read afresh, keeping the draws already read: the
        writer's plots and report read one staged ``posterior.nc`` (1-2 s to open), and only the manifest
        (timings) changes between them."""
        fresh = RunFolder(self.path, staging=self.staging)
        for name in ("idata", "prior_delta"):
            if name in self.__dict__:
                fresh.__dict__[name] = self.__dict__[name]
        return fresh

    @property
    def checksums(self) -> dict | None:
        """The manifest's ``output_files`` table (None: a run written before checksums were recorded)."""
        return self.manifest.get(FILES_KEY)

    def has(self, name: str) -> bool:
        """Whether the run has the file ``name`` (``plots/forest.png``-style paths)."""
        return (self.path / name).is_file() or name in (self.checksums or {})

    def file(self, name: str) -> Path:
        """The path of ``name``, after checking it against the manifest.

        Raises
        ------
        RunFolderError
            Naming the file: missing, truncated or damaged.
        """
        if name not in self.checked:
            self.checked[name] = check_file(self.path, name, self.checksums)
        problem = self.checked[name]
        if problem is not None:
            raise RunFolderError(self.path / name, problem)
        return self.path / name

    def table(self, name: str) -> pd.DataFrame:
        """``<name>.csv`` of the run (``decisions``, ``contrasts``, ``margin_curves``, ``diagnostics``, ...)."""
        path = self.file(f"{name}.csv")
        try:
            return pd.read_csv(path)
        except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise RunFolderError(path, f"unreadable CSV ({str(exc).splitlines()[0]}); the file is damaged") from None

    def read_json(self, name: str) -> dict:
        """A JSON file of the run (``approximations.json``), checked."""
        path = self.file(name)
        try:
            return json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RunFolderError(path, f"unreadable JSON ({exc}); the file is damaged") from None

    @property
    def decisions(self) -> pd.DataFrame:
        return self.table("decisions")

    @property
    def contrasts(self) -> pd.DataFrame:
        return self.table("contrasts")

    @cached_property
    def idata(self) -> az.InferenceData:
        """The run's InferenceData (``posterior.nc``), checked."""
        path = self.file("posterior.nc")
        try:
            return az.from_netcdf(str(path))
        except Exception as exc:  # h5py / netCDF raise OSError, ValueError, KeyError... on a damaged file
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise RunFolderError(path, f"unreadable NetCDF ({reason}); the file is damaged") from None

    @cached_property
    def prior_delta(self) -> xr.DataArray | None:
        """The prior draws of delta behind the decision table's prior column (``prior_delta.nc``, natural
        units), checked; None for a run written before they were kept."""
        if not self.has(PRIOR_DELTA_FILE):
            return None
        path = self.file(PRIOR_DELTA_FILE)
        try:
            with xr.open_dataset(path) as ds:
                return ds["delta_natural"].load()
        except Exception as exc:  # netCDF raises OSError, ValueError, KeyError... on a damaged file
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise RunFolderError(path, f"unreadable NetCDF ({reason}); the file is damaged") from None

    @property
    def verdict(self) -> str:
        """The diagnostics verdict: ``ok``, ``warning`` or ``fail``."""
        return self.manifest["diagnostics_verdict"]["status"]

    def diagnostics(self) -> RunDiagnostics:
        """The diagnostics tables and verdict (:func:`bayes_stenosis.diagnostics.load_run_diagnostics`),
        from checked files."""
        names = ["diagnostics.csv", "diagnostics_sampler.csv"]
        if self.has("diagnostics_decisions.csv"):
            names.append("diagnostics_decisions.csv")
        elif self.has("decisions.csv"):
            names += ["posterior.nc", "decisions.csv"]
        for name in names:
            self.file(name)
        return load_run_diagnostics(self.path)

    def verify(self) -> list[FileProblem]:
        """Every damaged, truncated or missing file of the run (empty: the run is intact)."""
        return verify_folder(self.path, self.manifest)

    def require_fit(self) -> None:
        """Raise :class:`RunFolderError` when the folder is not one fit's run (a synthesis folder, say, which
        reads like a run but has no decision table, sampler statistics or contrasts of one study)."""
        kind = self.manifest.get("kind")
        if kind is not None and kind != "fit":
            raise RunFolderError(
                self.path,
                f"a {kind} folder, not a fit's run: read its report.md and {kind}.json "
                "(summarize, diagnose, export and report read one study's fit)",
            )

    def require_intact(self) -> None:
        """Raise :class:`RunFolderError` naming the first damaged file (and how many more there are)."""
        problems = self.verify()
        if problems:
            more = ""
            if len(problems) > 1:
                more = f" (and {len(problems) - 1} more file(s): bayes-stenosis diagnose --verify lists them)"
            raise RunFolderError(problems[0].path, problems[0].problem + more)


def load_run(path: str | Path) -> RunFolder:
    """Open a complete run folder (one-line :class:`RunFolderError` otherwise).

    Warns (:class:`~bayes_stenosis.errors.UnverifiedRunWarning`) when the run predates output
    checksums: it still loads, and its files get the structural checks only.
    """
    run = RunFolder(check_run_folder(path))
    if run.checksums is None:
        warnings.warn(
            UnverifiedRunWarning(
                f"{run.path}: written without checksums (by an older bayes-stenosis); "
                "its files are checked for completeness only, not for damage"
            ),
            stacklevel=2,
        )
    return run


def published_file(path: str | Path) -> Path | None:
    """A file of any folder this package published (the sensitivity folder beside a run, say), checked
    against that folder's ``manifest.json``; None when it does not exist.

    Raises
    ------
    RunFolderError
        Naming the file (or the manifest) when it is damaged.
    """
    path = Path(path)
    if not path.is_file():
        return None
    manifest_path = path.parent / MANIFEST_NAME
    recorded = None
    if manifest_path.is_file():
        try:
            recorded = json.loads(manifest_path.read_text()).get(FILES_KEY)
        except (ValueError, AttributeError):
            raise RunFolderError(manifest_path, "unreadable manifest; the file is damaged") from None
    problem = check_file(path.parent, path.name, recorded)
    if problem is not None:
        raise RunFolderError(path, problem)
    return path
