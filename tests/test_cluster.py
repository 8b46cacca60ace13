"""--cluster (tlrl.cluster): Dask stays out of the serial run; a bad address, a missing extra or a lost
scheduler is one line; local:N and a real ``dask scheduler`` at tcp:// give the serial numbers."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pandas as pd
import pytest

from tlrl import cluster
from tlrl.cli import main
from tlrl.cluster import connect
from tlrl.errors import TlrlError

REPO = Path(__file__).resolve().parents[1]
BENCHMARK = ["--profile", "smoke", "--methods", "sc-dl-ef", "tl-finetune", "sc-dl-pa"]
CURVE = ["--profile", "smoke", "--sizes", "40", "--seeds", "0,1", "--methods", "offset,tl-finetune"]
TLRL = [sys.executable, "-m", "tlrl.cli"]


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


def _one_task(name: str, fn, args: tuple, path: Path):
    """A driver of one step of one task."""
    from tlrl.plan import Task

    yield [Task(name, fn, args, path)]


def test_a_raising_task_is_one_line_and_the_others_are_kept(client, tmp_path):
    from operator import truediv

    from tlrl.cluster import run_on

    done, good = [], tmp_path / "good"
    drivers = {"good": _one_task("good", Path.touch, (good,), good),
               "bad": _one_task("bad", truediv, (1, 0), tmp_path / "bad")}
    with pytest.warns(UserWarning, match="configuration bad failed: ZeroDivisionError") as caught:
        with pytest.raises(TlrlError, match=r"1 of 2 configurations failed \(bad\)"):
            run_on(client, drivers, lambda: done.append(1), "configuration")
    assert done == [1] and good.exists() and len(caught) == 1 and "\n" not in str(caught[0].message)


def test_a_cancelled_task_while_the_scheduler_lives_says_so(tmp_path):
    import threading

    from distributed import Client, Future

    with Client(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as client:
        def cancel_once_running() -> None:
            while not any(client.processing().values()):
                time.sleep(0.05)
            (key,) = (k for keys in client.processing().values() for k in keys)
            Future(key, client=client).cancel()

        threading.Thread(target=cancel_once_running, daemon=True).start()
        with pytest.raises(TlrlError, match=r"the Dask scheduler at \S+ cancelled unit slow \(a worker was lost\); the "
                                            "finished units' results are kept"):
            cluster.run_on(client, {"slow": _one_task("slow", time.sleep, (30,), tmp_path / "x")}, lambda: None,
                           "unit")


def test_sizes_over_the_usable_rows_are_refused_before_any_folder_on_a_cluster_too(client, jarvis_slice, tmp_path):
    from tlrl.curve import run_curve

    half = jarvis_slice.assign(formula=jarvis_slice.formula.where(jarvis_slice.index % 2 == 0, "Xx2O"))
    with pytest.raises(TlrlError, match=r"the largest size, 300, exceeds the 2\d\d usable train rows \(of 400"):
        run_curve(half, tmp_path / "o", sizes=(300,), methods=["mean"], profile="smoke", client=client)
    assert list(tmp_path.iterdir()) == []


def test_a_tiny_curve_on_local_2_equals_the_serial_one(client, jarvis_slice, tmp_path):
    from tlrl.curve import run_curve

    kw = {"sizes": (40,), "methods": ["mean", "offset", "tl-finetune"], "seeds": (0, 1), "profile": "smoke"}
    serial = run_curve(jarvis_slice, tmp_path / "serial", **kw).drop(columns="seconds")
    tasks = run_curve(jarvis_slice, tmp_path / "tasks", client=client, **kw).drop(columns="seconds")
    assert serial.equals(tasks)


def test_a_killed_worker_still_gives_the_serial_numbers(jarvis_slice, tmp_path):
    import threading

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


# --- tcp://: a real `dask scheduler` and `dask worker`s in their own process groups -----------------------------


def _env() -> dict[str, str]:
    """The environment of a child process: this tree's tlrl first."""
    return {**os.environ, "PYTHONPATH": str(REPO)}


@contextmanager
def dask_cluster(folder: Path, workers: int) -> Iterator[tuple[str, subprocess.Popen]]:
    """A ``dask scheduler`` on a free port and ``workers`` nannied ``dask worker``s of one thread, all registered.

    Yields the address and the scheduler's process; every process group is killed on leaving, failed or not.
    Their logs and scratch space stay in ``folder``.
    """
    from distributed import Client

    dask, file = Path(sys.executable).with_name("dask"), folder / "scheduler.json"
    procs: list[subprocess.Popen] = []

    def start(name: str, *args: str) -> subprocess.Popen:
        with open(folder / f"{name}.log", "w") as log:
            procs.append(subprocess.Popen([dask, *args, "--scheduler-file", str(file)], stdout=log,
                                          stderr=subprocess.STDOUT, start_new_session=True,
                                          env={**_env(), "DASK_TEMPORARY_DIRECTORY": str(folder)}))
        return procs[-1]

    try:
        scheduler = start("scheduler", "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard")
        for i in range(workers):
            start(f"worker-{i}", "worker", "--nthreads", "1", "--no-dashboard")
        with Client(scheduler_file=str(file), timeout=60) as client:
            if workers:
                client.wait_for_workers(workers, timeout=60)
            address = client.scheduler.address
        yield address, scheduler
    finally:
        for proc in procs:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory) -> Iterator[str]:
    """The address of a running ``dask scheduler`` with two workers."""
    with dask_cluster(tmp_path_factory.mktemp("dask"), 2) as (address, _):
        yield address


@pytest.fixture(scope="module")
def slice_csv(jarvis_slice, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("csv") / "slice.csv"
    jarvis_slice.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def serial_benchmark(slice_csv, tmp_path_factory) -> Path:
    """The folder of ``tlrl benchmark`` with BENCHMARK in this process, without --cluster."""
    out = tmp_path_factory.mktemp("serial") / "out"
    assert main(["benchmark", str(slice_csv), *BENCHMARK, "-o", str(out)]) == 0
    return out


def _numbers(path: Path) -> pd.DataFrame:
    """A results.csv or curve.csv without its timings."""
    return pd.read_csv(path).drop(columns="seconds")


def test_benchmark_on_a_tcp_scheduler_writes_the_serial_results(scheduler, slice_csv, serial_benchmark, tmp_path):
    proc = subprocess.run([*TLRL, "benchmark", str(slice_csv), *BENCHMARK, "--cluster", scheduler,
                           "-o", str(tmp_path / "tcp")], capture_output=True, text=True, env=_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert _numbers(tmp_path / "tcp" / "results.csv").equals(_numbers(serial_benchmark / "results.csv"))


def test_a_curve_on_a_tcp_scheduler_equals_the_serial_one(scheduler, slice_csv, tmp_path):
    assert main(["curve", str(slice_csv), *CURVE, "-o", str(tmp_path / "serial")]) == 0
    proc = subprocess.run([*TLRL, "curve", str(slice_csv), *CURVE, "--cluster", scheduler, "-o", str(tmp_path / "tcp")],
                          capture_output=True, text=True, env=_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr
    tcp, serial = (_numbers(tmp_path / run / "curve.csv") for run in ("tcp", "serial"))
    assert len(tcp) == 4 and tcp.equals(serial)


def test_a_lost_scheduler_is_one_line_and_a_rerun_resumes(slice_csv, serial_benchmark, tmp_path):
    out, deadline = tmp_path / "out", time.monotonic() + 300
    with dask_cluster(tmp_path, 1) as (address, scheduler):
        run = subprocess.Popen([*TLRL, "benchmark", str(slice_csv), *BENCHMARK, "--cluster", address, "-o", str(out)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
        try:
            while not any(out.glob("runs/*/metrics.json")) and run.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            os.killpg(scheduler.pid, signal.SIGKILL)
            err = run.communicate(timeout=60)[1]
        finally:
            run.kill()
    assert run.returncode == 2 and len(err.splitlines()) == 1, err
    assert err.startswith(f"tlrl benchmark: error: lost the Dask scheduler at {address} (configuration "), err
    assert "results are kept: rerun the same command to resume" in err
    finished = {path: path.stat().st_mtime_ns for path in out.glob("runs/*/metrics.json")}
    assert 0 < len(finished) < 3  # one worker thread: the last configuration never started

    assert main(["benchmark", str(slice_csv), *BENCHMARK, "-o", str(out)]) == 0
    assert {path: path.stat().st_mtime_ns for path in finished} == finished
    assert _numbers(out / "results.csv").equals(_numbers(serial_benchmark / "results.csv"))


def test_a_run_that_lands_after_its_client_left_joins_the_summaries_on_rerun(slice_csv, serial_benchmark, tmp_path):
    """A worker may finish its task after a lost scheduler ended the command; a rerun with nothing left to run
    still brings results.csv up to date."""
    out = shutil.copytree(serial_benchmark, tmp_path / "out")
    pd.read_csv(out / "results.csv").head(1).to_csv(out / "results.csv", index=False)
    assert main(["benchmark", str(slice_csv), *BENCHMARK, "-o", str(out)]) == 0
    assert _numbers(out / "results.csv").equals(_numbers(serial_benchmark / "results.csv"))


@pytest.mark.parametrize("command", ["curve", "benchmark"])
def test_a_scheduler_without_workers_is_one_line_before_any_folder(command, slice_csv, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT_S", 1)
    with dask_cluster(tmp_path, 0) as (address, _):
        code = main([command, str(slice_csv), "--profile", "smoke", "--cluster", address, "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.splitlines()) == 1, err
    assert f"error: the scheduler at {address} has no workers" in err and not (tmp_path / "o").exists()
