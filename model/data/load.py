"""`load_corpus`: one entry point for every corpus, apart from the data types (`model.data.corpus`), so that
the loaders import those types and nothing imports back. Torch-free.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from model.data.corpus import CORPUS_JSON, Corpus, DataError


def load_corpus(name: str, root: str | Path | None = None, **kw: Any) -> Corpus:
    """One entry point for every corpus.

    - `synthetic`: `root` None generates with `kw` (see `synthetic.generate`); else `root` is a saved corpus.
    - `msvd`: `root` holds `video_corpus.csv` or `AllVideoDescriptions.txt` (optional `youtube_mapping.txt`)
      and `features/`; `kw` may override `annotations`, `features_dir`, `mapping`, `split_sizes`.
    - `msrvtt`: `root` holds `train_val_videodatainfo.json` / `test_videodatainfo.json` and `features/`;
      `kw` may override `annotation_files`, `features_dir`.
    Any `root` that already holds a saved `corpus.json` is loaded as is.
    """
    if root is not None and (Path(root) / CORPUS_JSON).exists():
        corpus = Corpus.load(root)
        if corpus.name != name:
            raise ValueError(f"{root} holds corpus {corpus.name!r}, not {name!r}")
        return corpus
    if name == "synthetic":
        if root is not None:
            raise FileNotFoundError(f"no {CORPUS_JSON} in {root}")
        from model.data.synthetic import generate

        return generate(**kw)
    if root is None:
        raise DataError(f"corpus {name!r} needs its folder: pass --data-dir")
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"--data-dir {root} is not a folder")
    if name == "store":
        from model.data.store import is_store, load_store

        if not is_store(root):
            raise DataError(f"{root} is not a frame store (no store.json): make one with slr data prepare FOLDER "
                            f"--out {root}")
        return load_store(root)
    if name == "msvd":
        from model.data.msvd import load_msvd

        annotations = kw.pop("annotations", None) or _first_existing(
            root / "video_corpus.csv", root / "AllVideoDescriptions.txt"
        )
        mapping = kw.pop("mapping", None)
        if mapping is None and (root / "youtube_mapping.txt").exists():
            mapping = root / "youtube_mapping.txt"
        features_dir = kw.pop("features_dir", root / "features")
        return load_msvd(Path(annotations), Path(features_dir), mapping=mapping, **kw)
    if name == "msrvtt":
        from model.data.msrvtt import load_msrvtt

        files = kw.pop("annotation_files", None) or [
            p for p in (root / "train_val_videodatainfo.json", root / "test_videodatainfo.json") if p.exists()
        ]
        if not files:
            others = ", ".join(sorted(p.name for p in root.glob("*.json"))[:5])
            raise DataError(f"no MSR-VTT annotation file in {root}: looked for train_val_videodatainfo.json, "
                            f"test_videodatainfo.json" + (f"; found {others}: rename it" if others else ""))
        features_dir = kw.pop("features_dir", root / "features")
        return load_msrvtt(files, Path(features_dir), **kw)
    raise DataError(f"unknown corpus {name!r}; expected synthetic, msvd, msrvtt or store")


def _first_existing(*paths: Path) -> Path:
    for p in paths:
        if p.exists():
            return p
    raise DataError(f"no MSVD annotation file: looked for {', '.join(str(p) for p in paths)}")
