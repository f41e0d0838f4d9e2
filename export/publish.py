"""Atomic publication of an artifacts version: a hidden staging dir renamed into place, then the `latest`
pointer replaced by rename. The manifest itself is core.manifest.Manifest (one typed model for writer and
reader)."""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from core.manifest import LATEST, MANIFEST, Manifest, check_version_name

# ---------------------------------------------------------------- atomic publication

def staging_dir(root: Path, version: str) -> Path:
    """A hidden temp dir on the same filesystem as root, so the final rename is atomic."""
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=root))


def new_version_name(root: Path, version: str) -> str:
    """`version`, checked as a folder name and not yet published under root: refused before any work is done
    (publish() checks again at the rename)."""
    version = check_version_name(version)
    if (root / version).exists():
        raise FileExistsError(f"artifacts version {root / version} already exists; pass another version")
    return version


def publish(staging: Path, root: Path, version: str) -> Path:
    """Rename the finished staging dir to root/version (never over an existing version)."""
    final = root / version
    if final.exists():
        raise FileExistsError(f"artifacts version {final} already exists; pass another version")
    staging.chmod(0o755)  # mkdtemp makes it owner-only; a service under another user must read it
    os.rename(staging, final)
    return final


def rewrite_manifest(version_dir: Path, manifest: Manifest) -> None:
    """Replace a published version's manifest (a recalibration, a release record): written beside it, then renamed
    over it, so a reader sees the old manifest or the new one, never half of one."""
    staging = version_dir / f".{MANIFEST}.tmp"
    staging.mkdir(exist_ok=True)
    try:
        manifest.write(staging)
        os.replace(staging / MANIFEST, version_dir / MANIFEST)
    finally:
        staging.rmdir()


def read_latest(root: Path) -> str | None:
    """The version root/latest names; None where there is none yet."""
    try:
        return (root / LATEST).read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


def write_latest(root: Path, version: str) -> None:
    """root/latest names `version`, replaced by rename so a reader sees the old name or the new one."""
    fd, tmp = tempfile.mkstemp(prefix=".latest-", dir=root)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(version + "\n")
    os.chmod(tmp, 0o644)  # mkstemp makes it owner-only
    os.replace(tmp, root / LATEST)


def publish_version(root: Path, version: str, build: Callable[[Path], None], update_latest: bool) -> Path:
    """Build a version in a staging dir (`build` writes every file, the manifest last), rename it into place and
    then move `latest` to it; when `build` raises, the staging dir is removed and nothing is published."""
    staging = staging_dir(root, version)
    try:
        build(staging)
        final = publish(staging, root, version)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if update_latest:
        write_latest(root, version)
    return final
