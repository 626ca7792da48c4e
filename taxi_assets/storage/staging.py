"""Scratch space: files being built before the lake I/O manager publishes them.

Every layer hands the I/O manager a `StagedFile`; the file lives in a folder of its own under
the lake I/O manager's staging folder (`staging_dir`, TAXI_STAGING_DIR; on the lake's
filesystem by default, so publishing a local lake file is a rename, not a copy). Folders and temporary files carry the owning process's id, so what a
killed run left behind is removed by the next one.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

DEFAULT_STAGING_DIR = "./data/staging"


def staging_root(folder: str | Path) -> Path:
    return Path(folder).expanduser().absolute()


def owner_tag() -> str:
    """Marks scratch files and folders with the process that owns them."""
    return f"pid{os.getpid()}"


def abandoned(name: str) -> bool:
    """Whether a scratch name made with `owner_tag()` belongs to a process that is gone
    (killed mid-run). Untagged names and live processes' names never are."""
    match = re.search(r"\bpid(\d+)\b", name)
    if match is None or int(match.group(1)) == os.getpid():
        return False
    try:
        os.kill(int(match.group(1)), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


@dataclass(frozen=True)
class StagedFile:
    """A finished file waiting for the lake I/O manager to publish it, plus the
    rows set aside while building it (`quarantine`), if there were any, and files
    derived from it that are published beside it (`sidecars`: names starting with "_",
    which readers of the folder's data files skip, as Spark and Hive do)."""

    path: Path
    quarantine: Path | None = None
    sidecars: tuple[Path, ...] = ()

    @classmethod
    def new(cls, name: str, folder: str | Path) -> StagedFile:
        """A new file `name` in a folder of its own under `folder` (the staging folder)."""
        root = staging_root(folder)
        root.mkdir(parents=True, exist_ok=True)
        # Folders left by killed runs are removed by the next run (on any month).
        for folder in root.glob("stage-pid*"):
            if abandoned(folder.name):
                shutil.rmtree(folder, ignore_errors=True)
        return cls(Path(tempfile.mkdtemp(prefix=f"stage-{owner_tag()}-", dir=root)) / name)

    def discard(self) -> None:
        shutil.rmtree(self.path.parent, ignore_errors=True)
