"""Trial results on disk, one CSV part per finished batch: what survives a killed run, and what a resumed
run skips.

A store is a folder::

    engine.json                         what the trials are (fingerprint, root seed): a resumed run must match
    part-<first>-<last>.csv             the rows of trials first..last (8-digit indices), one file per batch

A part is written to a hidden temporary name and renamed into place, so a part either holds a whole
batch or does not exist; a killed run loses at most the batches in flight. Each row carries its
``trial`` index; a trial may give several rows (one per design point, say).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bayes_stenosis.errors import InputError

STORE_FILE = "engine.json"
PART_PREFIX = "part-"
TRIAL_COLUMN = "trial"


@dataclass(frozen=True)
class TrialStore:
    """A folder of trial results for one piece of work (``fingerprint``) and one ``root_seed``.

    Parameters
    ----------
    path
        The folder (created on :meth:`open`).
    fingerprint
        What the trials compute, as a string the caller derives from everything that changes a trial's
        result (the inputs' hash, the settings). A store made for other work is refused, never mixed in.
    root_seed
        The seed every trial's stream derives from (:func:`bayes_stenosis.engine.trial_seed`).
    """

    path: Path
    fingerprint: str
    root_seed: int

    def open(self) -> TrialStore:
        """Create the folder, or check that an existing one holds the same work; returns ``self``.

        Raises
        ------
        InputError
            The folder holds trials of other work or another seed (naming ``engine.json`` and the key).
        """
        meta = {"fingerprint": self.fingerprint, "root_seed": int(self.root_seed)}
        path = self.path / STORE_FILE
        if path.is_file():
            try:
                saved = json.loads(path.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise InputError(path, "unreadable JSON; the trial store is damaged (remove the folder)") from None
            for key, value in meta.items():
                if saved.get(key) != value:
                    raise InputError(
                        path,
                        f"holds trials of other work ({key} {saved.get(key)!r}, this run {value!r}); "
                        "remove the folder or write elsewhere",
                        field=key,
                    )
            return self
        self.path.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(meta, indent=2) + "\n")
        return self

    def parts(self) -> list[Path]:
        """The finished parts, in trial order (temporary files of batches in flight are not parts)."""
        return sorted(self.path.glob(f"{PART_PREFIX}*.csv"))

    def done_trials(self) -> set[int]:
        """Indices of the trials whose rows are saved."""
        done: set[int] = set()
        for part in self.parts():
            done.update(pd.read_csv(part, usecols=[TRIAL_COLUMN])[TRIAL_COLUMN].astype(int))
        return done

    def write_part(self, rows: pd.DataFrame) -> Path:
        """Save one finished batch (``rows`` with a ``trial`` column) as a part, atomically."""
        trials = rows[TRIAL_COLUMN].astype(int)
        name = f"{PART_PREFIX}{trials.min():08d}-{trials.max():08d}.csv"
        target = self.path / name
        # float_format=None keeps pandas' shortest round-trip repr: the saved floats are the computed ones
        write_atomic(target, rows.to_csv(index=False))
        return target

    def read(self, trials: range | None = None) -> pd.DataFrame:
        """Every saved row (only ``trials`` if given), sorted by trial and then by the other key columns
        in their saved order: the same table whichever worker made each part, and in whichever order."""
        frames = [pd.read_csv(part) for part in self.parts()]
        if not frames:
            return pd.DataFrame({TRIAL_COLUMN: pd.Series(dtype=int)})
        table = pd.concat(frames, ignore_index=True)
        if trials is not None:
            table = table[table[TRIAL_COLUMN].isin(trials)]
        return table.sort_values(TRIAL_COLUMN, kind="stable").reset_index(drop=True)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a hidden temporary file in the same folder and a rename."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)
