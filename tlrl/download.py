"""The paper's datasets from anywhere: downloaded by pooch into the cache, checked by SHA-256.

Source: the release assets of this project's own repository (release ``data-v1``), which are the
very files the project trains on, gzipped ``formula,target[,split]`` CSVs (``make data-release``
writes them and their hashes). The upstream repositories (NU-CUCIS/CrossPropertyTL for JARVIS,
CrabNet for OQMD) hold raw CSVs with other columns, OQMD split over three files, so a hash there
could check only the raw download, never the converted file that training reads, and a branch's
file may change under the same URL. A release asset stays as uploaded, and the hash kept in
``datasets.sha256`` checks exactly the bytes that are loaded.

``$TLRL_DATA_URL`` replaces the base URL (a mirror, or a local server in the tests). A file under a
registered name in a local data folder is checked against the same registry (``verify``).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from tlrl.errors import TlrlError
from tlrl.io import atomic_write

REPOSITORY = "https://github.com/tlrl-book/tlrl"  # written by scripts/set_repository.py from _config.yml
DATA_RELEASE = "data-v1"
DATA_URL_ENV = "TLRL_DATA_URL"
HASHES = Path(__file__).with_name("datasets.sha256")  # `sha256sum` format, written by make data-release
CACHE_DIR_ENV = "TLRL_CACHE_DIR"
RETRIES = 2  # pooch's retry_if_failed: a failed or corrupt download is tried this many more times


def default_cache_dir() -> Path:
    """Where downloaded datasets and feature caches go: ``$TLRL_CACHE_DIR``, else the platform's user cache."""
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV])
    import platformdirs

    return Path(platformdirs.user_cache_dir("tlrl", appauthor=False))


def dataset_cache() -> Path:
    """Where the paper's datasets are downloaded to (``<cache>/data``)."""
    return default_cache_dir() / "data"


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
    path = folder / f"{name}.csv.gz"
    try:
        return verify(name, path) if path.is_file() else None
    except TlrlError:  # changed or corrupt: fetch downloads it again
        return None


def verify(name: str, path: Path) -> Path:
    """``path`` if its SHA-256 is the one registered for ``name``, else a one-line ``TlrlError``.

    The hash is computed once per file version: it is kept in ``<cache>/verified.json`` under the
    file's path with its size and mtime, and computed again only when either changes.
    """
    import pooch  # here, so that the training engine imports where pooch is absent (a GPU machine)

    expected = registry()[name]
    stat = path.stat()
    version = [stat.st_size, stat.st_mtime_ns]
    store = default_cache_dir() / "verified.json"
    try:
        known = json.loads(store.read_text())
    except (OSError, ValueError):
        known = {}
    key = str(path.resolve())
    if known.get(key, [])[:2] == version:
        digest = known[key][2]
    else:
        digest = pooch.file_hash(str(path))
        known[key] = [*version, digest]
        try:
            with atomic_write(store) as tmp:
                tmp.write_text(json.dumps(known, indent=1))
        except TlrlError:  # a read-only cache: check again next time
            pass
    if digest != expected:
        raise TlrlError(f"{path} is not tlrl's {name}: its SHA-256 is {digest}, the registered one {expected} "
                        "(replace the file, or load it as a CSV under another name)")
    return path


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
        pup = pooch.create(path=folder, base_url=data_url(), registry={file: f"sha256:{registry()[name]}"},
                           retry_if_failed=RETRIES)
        return Path(pup.fetch(file, progressbar=False))
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
    try:
        print(fetch_all(dataset_cache()))
    except TlrlError as exc:
        raise SystemExit(f"tlrl.download: error: {exc}") from None
