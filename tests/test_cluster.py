"""--cluster (tlrl.cluster): Dask stays out of the serial run; a bad address or a missing extra is one line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tlrl import cluster
from tlrl.cli import main
from tlrl.cluster import connect
from tlrl.errors import TlrlError


def test_the_serial_run_never_imports_dask():
    code = ("import sys, tlrl.cli, tlrl.benchmark, tlrl.curve, tlrl.cluster; "
            "assert not {m.split('.')[0] for m in sys.modules} & {'dask', 'distributed'}")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("address", ["local:0", "tcp://", "tcp://h:abc", "tcp://h:0", "tcp://h:70000", "tcp://h"])
def test_a_bad_address_is_one_error(address):
    with pytest.raises(TlrlError, match=f"local, local:N or tcp://HOST:PORT .*, got '{address}'"):
        connect(address)


@pytest.mark.parametrize(("command", "address", "message"), [
    ("curve", "tcp://nohost:1", "no Dask scheduler answers at tcp://nohost:1"),
    ("benchmark", "tcp://127.0.0.1:1", "no Dask scheduler answers at tcp://127.0.0.1:1"),
    ("curve", "tcp://", "--cluster must be local, local:N or tcp://HOST:PORT"),
    ("benchmark", "tcp://h:abc", "--cluster must be local, local:N or tcp://HOST:PORT"),
])
def test_an_unreachable_or_malformed_scheduler_is_one_line_and_exit_2(command, address, message, tmp_path,
                                                                      monkeypatch, capsys):
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT_S", 1)
    assert main([command, "jarvis_formation_energy", "--profile", "smoke", "--cluster", address,
                 "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith(f"tlrl {command}: error: {message}"), err
    assert list(tmp_path.iterdir()) == []


def test_a_missing_extra_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(TlrlError, match=r"--cluster needs `pip install 'tlrl\[cluster\]'`"):
        connect("local:2")


@pytest.fixture(scope="module")
def client():
    from distributed import Client

    with Client(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c:
        yield c


def test_local_2_writes_the_serial_numbers(client, jarvis_slice, tmp_path):
    from tlrl.benchmark import run_benchmark

    methods = ["sc-dl-ef", "tl-finetune"]
    serial = run_benchmark(jarvis_slice, tmp_path / "serial", profile="smoke", methods=methods)
    tasks = run_benchmark(jarvis_slice, tmp_path / "tasks", profile="smoke", methods=methods, client=client)
    cols = ["method", "cv_mae_mean", "cv_mae_std", "fold_val_mae", "test_mae", "test_mae_ensemble"]
    assert serial[cols].equals(tasks[cols])


def test_a_raising_task_is_one_line_and_the_others_are_kept(client):
    from operator import truediv

    from tlrl.cluster import run_tasks

    done = []
    with pytest.warns(UserWarning, match="configuration bad failed: ZeroDivisionError") as caught:
        with pytest.raises(TlrlError, match=r"1 of 2 configurations failed \(bad\)"):
            run_tasks(client, {"good": (truediv, (1, 2)), "bad": (truediv, (1, 0))}, lambda: done.append(1),
                      "configuration")
    assert done == [1] and len(caught) == 1 and "\n" not in str(caught[0].message)


def test_a_tiny_curve_on_local_2_equals_the_serial_one(client, jarvis_slice, tmp_path):
    from tlrl.curve import run_curve

    kw = {"sizes": (40,), "methods": ["mean", "offset", "tl-finetune"], "seeds": (0, 1), "profile": "smoke"}
    serial = run_curve(jarvis_slice, tmp_path / "serial", **kw).drop(columns="seconds")
    tasks = run_curve(jarvis_slice, tmp_path / "tasks", client=client, **kw).drop(columns="seconds")
    assert serial.equals(tasks)


def test_a_killed_worker_still_gives_the_serial_numbers(jarvis_slice, tmp_path):
    import os
    import signal
    import threading
    import time

    from distributed import Client

    from tlrl.benchmark import run_benchmark

    methods = ["sc-dl-ef", "tl-finetune", "sc-dl-pa"]
    serial = run_benchmark(jarvis_slice, tmp_path / "serial", profile="smoke", methods=methods)
    with Client(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as client:
        pids = client.run(os.getpid)
        killed = []

        def kill_a_busy_worker() -> None:
            while not killed:
                busy = [w for w, keys in client.processing().items() if keys]
                if busy:
                    os.kill(pids[busy[0]], signal.SIGKILL)
                    killed.append(busy[0])
                time.sleep(0.05)

        threading.Thread(target=kill_a_busy_worker, daemon=True).start()
        tasks = run_benchmark(jarvis_slice, tmp_path / "tasks", profile="smoke", methods=methods, client=client)
    cols = ["method", "cv_mae_mean", "cv_mae_std", "fold_val_mae", "test_mae", "test_mae_ensemble"]
    assert killed and serial[cols].equals(tasks[cols])
