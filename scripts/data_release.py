"""Write the data release: the datasets as release assets, and their SHA-256 registry in the package.

    python scripts/data_release.py [DATA_DIR] [--out _build/data-release]

Copies every dataset of the registry from DATA_DIR (default ``$TLRL_DATA_DIR``) into OUT, writes
``tlrl/datasets.sha256`` (``sha256sum`` format, so ``sha256sum -c`` checks a download too) and
prints the command that uploads OUT to the repository's release. ``make data-release`` runs it.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
from pathlib import Path

from tlrl.data import DATASETS
from tlrl.download import DATA_RELEASE, HASHES, REPOSITORY


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_release(data_dir: Path, out: Path) -> list[Path]:
    """Copy the datasets into ``out``, write the package's hash registry; return the assets."""
    missing = [name for name in DATASETS if not (data_dir / f"{name}.csv.gz").is_file()]
    if missing:
        sys.exit(f"data_release: {data_dir} lacks {', '.join(f'{m}.csv.gz' for m in missing)}")
    out.mkdir(parents=True, exist_ok=True)
    assets = [Path(shutil.copyfile(data_dir / f"{name}.csv.gz", out / f"{name}.csv.gz")) for name in DATASETS]
    HASHES.write_text("".join(f"{sha256(asset)}  {asset.name}\n" for asset in assets))
    return assets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", nargs="?", type=Path, default=os.environ.get("TLRL_DATA_DIR") or None)
    parser.add_argument("--out", type=Path, default=Path("_build/data-release"))
    args = parser.parse_args()
    if args.data_dir is None:
        parser.error("give DATA_DIR or set TLRL_DATA_DIR")
    assets = write_release(Path(args.data_dir), args.out)
    print(f"wrote {len(assets)} assets to {args.out} and their hashes to {HASHES}")
    print("upload them (once per data release) with:")
    print(f"  gh release create {DATA_RELEASE} {' '.join(map(str, assets))} --repo {REPOSITORY} "
          f"--title 'Datasets ({DATA_RELEASE})' --notes 'The paper datasets as tlrl uses them; see the README.'")


if __name__ == "__main__":
    main()
