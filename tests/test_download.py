"""The paper's datasets through pooch: the hash registry, and real downloads from a local HTTP server."""

from __future__ import annotations

import functools
import hashlib
import shutil
import socket
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

from tlrl.data import DATASETS, LATEST_JARVIS, load_dataset
from tlrl.download import RETRIES, default_cache_dir, registry
from tlrl.errors import TlrlError


class QuietHandler(SimpleHTTPRequestHandler):
    requests: list[str] = []

    def log_message(self, *args) -> None:
        QuietHandler.requests.append(self.path)


@pytest.fixture
def serve():
    """``serve(folder)`` -> base URL of an HTTP server on 127.0.0.1 that serves ``folder``."""
    servers = []

    def start(folder: Path) -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(folder)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    QuietHandler.requests = []
    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def cache(monkeypatch, tmp_path: Path) -> Path:
    """No local data folder and an empty cache: a registry name must be downloaded."""
    monkeypatch.delenv("TLRL_DATA_DIR", raising=False)
    monkeypatch.setenv("TLRL_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "data"


def assert_one_error(name: str, url: str, cache: Path, reason: str) -> None:
    """Loading ``name`` fails with one line that names the URL, the cache path and the reason."""
    with pytest.raises(TlrlError) as info:
        load_dataset(name)
    message = str(info.value)
    assert f"from {url}{name}.csv.gz into the cache {cache / f'{name}.csv.gz'} failed: " in message
    assert reason in message and "\n" not in message


def test_registry_holds_the_hashes_of_the_shared_files(data_dir: Path) -> None:
    on_disk = {p.name.removesuffix(".csv.gz"): hashlib.sha256(p.read_bytes()).hexdigest()
               for p in data_dir.glob("*.csv.gz")}
    assert on_disk == registry()
    assert set(registry()) == set(DATASETS)
    assert not set(LATEST_JARVIS) & set(DATASETS)


def test_paper_datasets_download_verified_into_the_cache(monkeypatch, serve, cache: Path, data_dir: Path) -> None:
    monkeypatch.setenv("TLRL_DATA_URL", serve(data_dir))
    jarvis = load_dataset("jarvis_formation_energy")
    assert len(jarvis) == 28_108
    assert jarvis["split"].value_counts().to_dict() == {"train": 25_297, "test": 2_811}
    oqmd = load_dataset("oqmd_formation_enthalpy")
    assert len(oqmd) == 341_700
    for name in ("jarvis_formation_energy", "oqmd_formation_enthalpy"):
        assert (cache / f"{name}.csv.gz").read_bytes() == (data_dir / f"{name}.csv.gz").read_bytes()
    assert sorted(QuietHandler.requests) == ["/jarvis_formation_energy.csv.gz", "/oqmd_formation_enthalpy.csv.gz"]
    pd.testing.assert_frame_equal(load_dataset("jarvis_formation_energy", online=False), jarvis)
    load_dataset("jarvis_formation_energy")
    assert len(QuietHandler.requests) == 2, "a verified cached file is not downloaded again"


def test_a_changed_cache_file_is_downloaded_again(monkeypatch, serve, cache: Path, data_dir: Path) -> None:
    monkeypatch.setenv("TLRL_DATA_URL", serve(data_dir))
    cache.mkdir(parents=True)
    shutil.copyfile(data_dir / "jarvis_bulk_modulus_kv.csv.gz", cache / "expt_bandgap.csv.gz")
    with pytest.raises(TlrlError, match=r"'expt_bandgap' not found; looked in .*cache/data/expt_bandgap\.csv\.gz"):
        load_dataset("expt_bandgap", online=False)
    assert len(load_dataset("expt_bandgap")) == 4_920
    assert QuietHandler.requests == ["/expt_bandgap.csv.gz"]


def test_a_download_with_the_wrong_hash_is_one_error(monkeypatch, serve, cache: Path, tmp_path: Path,
                                                     data_dir: Path) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    shutil.copyfile(data_dir / "expt_bandgap.csv.gz", mirror / "jarvis_formation_energy.csv.gz")
    url = serve(mirror)
    monkeypatch.setenv("TLRL_DATA_URL", url)
    assert_one_error("jarvis_formation_energy", url, cache, "SHA-256 differs")
    assert not (cache / "jarvis_formation_energy.csv.gz").exists()


def test_an_unreachable_server_is_one_error(monkeypatch, cache: Path) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("TLRL_DATA_URL", f"http://127.0.0.1:{port}")
    assert_one_error("oqmd_formation_enthalpy", f"http://127.0.0.1:{port}/", cache, "ConnectionError")


def test_a_missing_file_on_the_server_is_one_error(monkeypatch, serve, cache: Path, tmp_path: Path) -> None:
    monkeypatch.setenv("TLRL_DATA_URL", serve(tmp_path))
    with pytest.raises(TlrlError, match=r"expt_bandgap\.csv\.gz .* failed: HTTPError: 404"):
        load_dataset("expt_bandgap")


def test_a_flaky_server_is_retried(monkeypatch, serve, cache: Path, data_dir: Path) -> None:
    """The first request for the file fails (HTTP 503); pooch's retry_if_failed fetches it on the next."""
    failures = []

    def flaky_get(self) -> None:
        if not failures:
            failures.append(self.path)
            self.send_error(503)
            return
        SimpleHTTPRequestHandler.do_GET(self)

    monkeypatch.setattr(QuietHandler, "do_GET", flaky_get)
    monkeypatch.setenv("TLRL_DATA_URL", serve(data_dir))
    assert RETRIES >= 1
    assert len(load_dataset("expt_bandgap")) == 4_920
    assert failures == ["/expt_bandgap.csv.gz"]


def test_the_cache_folder_is_the_platforms_unless_tlrl_cache_dir_names_one(monkeypatch, tmp_path: Path) -> None:
    import platformdirs

    monkeypatch.setenv("TLRL_CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path
    monkeypatch.delenv("TLRL_CACHE_DIR")
    assert default_cache_dir() == Path(platformdirs.user_cache_dir("tlrl", appauthor=False))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))  # where Linux users move their caches
    assert default_cache_dir() == tmp_path / "xdg" / "tlrl"


def test_a_local_file_under_a_registered_name_is_checked_once_per_version(monkeypatch, tmp_path: Path,
                                                                          data_dir: Path) -> None:
    local = tmp_path / "local"
    local.mkdir()
    good = local / "expt_bandgap.csv.gz"
    shutil.copyfile(data_dir / "expt_bandgap.csv.gz", good)
    monkeypatch.setenv("TLRL_DATA_DIR", str(local))
    monkeypatch.setenv("TLRL_CACHE_DIR", str(tmp_path / "cache"))
    hashed = []
    import pooch

    real_hash = pooch.file_hash
    monkeypatch.setattr(pooch, "file_hash", lambda path: hashed.append(path) or real_hash(path))
    assert len(load_dataset("expt_bandgap")) == 4_920
    assert len(load_dataset("expt_bandgap", data_dir=local)) == 4_920
    assert hashed == [str(good)], "the verdict is cached by size and mtime"

    # a 300-row file under the registered name: refused with one line naming both hashes
    rows = pd.read_csv(data_dir / "expt_bandgap.csv.gz").head(300)
    rows.to_csv(good, index=False, compression="gzip")
    with pytest.raises(TlrlError) as info:
        load_dataset("expt_bandgap")
    message = str(info.value)
    actual = hashlib.sha256(good.read_bytes()).hexdigest()
    assert message == (f"{good} is not tlrl's expt_bandgap: its SHA-256 is {actual}, the registered one "
                       f"{registry()['expt_bandgap']} (replace the file, or load it as a CSV under another name)")
    assert len(hashed) == 2

    # the same rows under the user's own name are not checked
    mine = local / "my_bandgaps.csv.gz"
    shutil.copyfile(good, mine)
    assert len(load_dataset(str(mine))) == 300
    assert len(hashed) == 2


def test_python_m_tlrl_download_needs_no_tlrl_data(tmp_path: Path) -> None:
    """No import cycle: the download module runs with tlrl.data unimportable."""
    import subprocess
    import sys

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code = ("import runpy, sys; sys.modules['tlrl.data'] = None; "
            "runpy.run_module('tlrl.download', run_name='__main__')")
    env = {"PATH": "/usr/bin:/bin", "TLRL_CACHE_DIR": str(tmp_path), "TLRL_DATA_URL": f"http://127.0.0.1:{port}",
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 1
    assert result.stderr.startswith("tlrl.download: error: download of dataset 'oqmd_formation_enthalpy' from "
                                    f"http://127.0.0.1:{port}/oqmd_formation_enthalpy.csv.gz into the cache "
                                    f"{tmp_path / 'data' / 'oqmd_formation_enthalpy.csv.gz'} failed: ConnectionError")
