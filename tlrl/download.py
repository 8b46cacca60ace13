"""The paper's datasets from anywhere: downloaded by pooch into the cache, checked by SHA-256.

Source: the release assets of this project's own repository (release ``data-v1``), which are the
very files the project trains on, gzipped ``formula,target[,split]`` CSVs (``make data-release``
writes them and their hashes). The upstream repositories (NU-CUCIS/CrossPropertyTL for JARVIS,
CrabNet for OQMD) hold raw CSVs with other columns, OQMD split over three files, so a hash there
could check only the raw download, never the converted file that training reads, and a branch's
file may change under the same URL. A release asset stays as uploaded, and the hash kept in
``datasets.sha256`` checks exactly the bytes that are loaded.

``$TLRL_DATA_URL`` replaces the base URL (a mirror, or a local server in the tests).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from tlrl.errors import TlrlError

REPOSITORY = "https://github.com/tlrl-book/tlrl"  # written by scripts/set_repository.py from _config.yml
DATA_RELEASE = "data-v1"
DATA_URL_ENV = "TLRL_DATA_URL"
HASHES = Path(__file__).with_name("datasets.sha256")  # `sha256sum` format, written by make data-release


def data_url() -> str:
    """The base URL the datasets are downloaded from, ending in '/'."""
    base = os.environ.get(DATA_URL_ENV) or f"{REPOSITORY}/releases/download/{DATA_RELEASE}"
    return base.rstrip("/") + "/"


def registry() -> dict[str, str]:
    """Dataset name -> SHA-256 of its ``<name>.csv.gz``."""
    pairs = (line.split() for line in HASHES.read_text().splitlines() if line.strip())
    return {file.removesuffix(".csv.gz"): digest for digest, file in pairs}


def cached(name: str, folder: Path) -> Path | None:
    """The dataset's file in ``folder`` if it is there with the registered hash."""
    import pooch  # here, so that the training engine imports where pooch is absent (a GPU machine)

    path = folder / f"{name}.csv.gz"
    return path if path.is_file() and pooch.file_hash(str(path)) == registry()[name] else None


def fetch(name: str, folder: Path) -> Path:
    """The dataset's file in ``folder``; downloaded first when missing or not matching its hash."""
    import pooch
    import requests

    file = f"{name}.csv.gz"
    url = data_url() + file
    pooch_log = pooch.get_logger()
    level = pooch_log.level
    pooch_log.setLevel(logging.WARNING)  # no "Downloading ..." lines with local paths in notebooks
    try:
        return Path(pooch.retrieve(url, f"sha256:{registry()[name]}", fname=file, path=folder, progressbar=False))
    except ValueError:  # pooch's hash check; the download is discarded
        reason = "the file's SHA-256 differs from the one registered in tlrl (a changed or corrupt file)"
    except requests.ConnectionError:
        reason = "ConnectionError: the server cannot be reached (offline, or a wrong URL)"
    except (requests.RequestException, OSError) as exc:
        reason = f"{type(exc).__name__}: {exc}"
    finally:
        pooch_log.setLevel(level)
    raise TlrlError(
        f"download of dataset {name!r} from {url} into the cache {folder / file} failed: {reason} "
        f"(set ${DATA_URL_ENV} to another source, or $TLRL_DATA_DIR to a folder that has the file)"
    )


def fetch_all(folder: Path) -> Path:
    """Every registered dataset in ``folder``, downloaded where needed; returns ``folder``."""
    for name in registry():
        fetch(name, folder)
    return folder


if __name__ == "__main__":  # python -m tlrl.download: the datasets into the cache, then print its folder
    from tlrl.data import dataset_cache

    try:
        print(fetch_all(dataset_cache()))
    except TlrlError as exc:
        raise SystemExit(f"tlrl.download: error: {exc}") from None
