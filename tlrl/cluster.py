"""The benchmark's configurations and the curve's units as Dask tasks (the ``cluster`` extra).

``--cluster local`` or ``local:N`` starts a ``LocalCluster`` of N worker processes (default: one a
core) with the cores divided between them; ``tcp://HOST:PORT`` joins a running scheduler. A task is
one configuration or one curve unit: it loads its data on the worker through the registry and cache,
writes its result atomically into the results folder and returns nothing, so no array passes through
the scheduler. A frame given in Python is scattered once. The client rebuilds the summaries after
each result. Dask is imported only here, and only once a cluster is asked for.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from tlrl.errors import TlrlError
from tlrl.extras import require

if TYPE_CHECKING:
    from distributed import Client

    from tlrl.curve import _Curve
    from tlrl.profiles import Profile

Task = tuple[Callable[..., Any], tuple]
CONNECT_TIMEOUT_S = 10  # how long to wait for a tcp:// scheduler
_curves: dict[str, _Curve] = {}  # per worker process: the curve inputs of the run under way


def connect(address: str) -> Client:
    """A client for ``--cluster``: ``local``, ``local:N`` (N worker processes) or ``tcp://HOST:PORT``.

    A scheduler that does not answer within ``CONNECT_TIMEOUT_S`` seconds is a ``TlrlError``.
    """
    require("cluster", "--cluster")
    from distributed import Client

    remote = re.fullmatch(r"tcp://([^/:\s]+|\[[0-9a-fA-F:.]+\]):(\d{1,5})", address)
    if remote is not None and 0 < int(remote[2]) < 2**16:
        try:
            client = Client(address, timeout=CONNECT_TIMEOUT_S)
        except OSError as exc:  # TimeoutError included: no scheduler there, or no such host
            raise TlrlError(f"no Dask scheduler answers at {address} ({exc})") from None
        check_client(client)
        return client
    match = re.fullmatch(r"local(?::([1-9]\d*))?", address)
    if match is None:
        raise TlrlError(f"--cluster must be local, local:N or tcp://HOST:PORT (a port from 1 to 65535), "
                        f"got {address!r}")
    cores = os.cpu_count() or 1
    workers = int(match[1] or cores)
    return Client(n_workers=workers, threads_per_worker=max(1, cores // workers), processes=True)


def check_client(client: object) -> None:
    """Refuse, before any work, a ``client`` that is not a ``distributed.Client`` (None passes: no cluster),
    or whose scheduler has no worker within ``CONNECT_TIMEOUT_S`` seconds (the client is then closed)."""
    if client is None:
        return
    distributed = sys.modules.get("distributed")  # a Client exists only once distributed is imported
    if distributed is None or not isinstance(client, distributed.Client):
        raise TlrlError(f"client must be a distributed.Client or None, got {client!r}")
    try:
        client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
    except TimeoutError:
        address = client.scheduler.address
        _close_quietly(client)
        raise TlrlError(f"the scheduler at {address} has no workers (none joined within {CONNECT_TIMEOUT_S} s); "
                        f"start some with 'dask worker {address}'") from None


def run_tasks(client: Client, tasks: dict[str, Task], on_result: Callable[[], object], what: str) -> None:
    """Run each named task on the cluster and call ``on_result`` after each success.

    A failed task is one warning line (its name and error) and the others go on; at the end a
    ``TlrlError`` names the failed ones. A cancelled task (a lost scheduler cancels them all) is a
    ``TlrlError`` at once, the client closed.
    Progress: dask's bar in a terminal, unless TQDM_DISABLE is set.
    """
    from distributed import as_completed, progress

    scattered: dict[int, Any] = {}
    futures = {client.submit(fn, *(_scatter(client, a, scattered) for a in args), key=f"{what}-{name}", pure=False):
               name for name, (fn, args) in tasks.items()}
    if futures and not os.environ.get("TQDM_DISABLE") and sys.stdout.isatty():
        print(f"dask dashboard: {client.dashboard_link}")
        progress(list(futures), notebook=False)
        print()
    address, failed = client.scheduler.address, []
    for future in as_completed(futures):
        if future.status == "finished":
            on_result()
        elif future.status == "error":
            error = future.exception()
            warnings.warn(f"{what} {futures[future]} failed: {type(error).__name__}: {error}", stacklevel=2)
            failed.append(futures[future])
        else:  # cancelled: the client lost its scheduler (which cancels every task), or the task lost a worker
            name = futures[future]
            lost = (f"lost the Dask scheduler at {address} ({what} {name} was cancelled)" if client.status != "running"
                    else f"the Dask scheduler at {address} cancelled {what} {name} (a worker was lost)")
            _close_quietly(client)
            raise TlrlError(f"{lost}; the finished {what}s' results are kept: rerun the same command to resume")
    if failed:
        raise TlrlError(f"{len(failed)} of {len(tasks)} {what}s failed ({', '.join(sorted(failed))}); the others' "
                        "results are kept: rerun the same command to retry them")


def _close_quietly(client: Client) -> None:
    """Close a client whose scheduler is gone, without distributed's traceback of the reconnection it cancels."""
    log = logging.getLogger("distributed.client")
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        client.close()
    finally:
        log.setLevel(level)


def _scatter(client: Client, arg: Any, scattered: dict[int, Any]) -> Any:
    """A frame argument scattered once to every worker (a future); any other argument as it is."""
    if not isinstance(arg, pd.DataFrame):
        return arg
    if id(arg) not in scattered:
        scattered[id(arg)] = client.scatter(arg, broadcast=True, hash=False)
    return scattered[id(arg)]


def benchmark_task(slug: str, dataset, source, prof: Profile, seed: int, data_dir, out: Path) -> None:
    """One configuration into ``out/runs/<slug>/`` (``tlrl.methods.run``, written as a whole)."""
    from tlrl.methods import run

    run(slug, dataset, source=source, profile=prof, seed=seed, data_dir=data_dir, out_dir=out / "runs" / slug,
        save_models=False)


def curve_task(token: str, dataset, prof: Profile, source, data_dir, slugs: list[str], slug: str, size: int,
               seeds: list[int], path: Path) -> None:
    """One curve unit into ``path``; the worker builds the curve's inputs once per run (``token``)."""
    from tlrl.curve import build_curve
    from tlrl.io import write_csv
    from tlrl.methods import prepare_data

    if token not in _curves:
        _curves.clear()
        _curves[token] = build_curve(*prepare_data(dataset, prof, 0, data_dir), prof, source, slugs)
    write_csv(path, _curves[token].run_unit(slug, size, seeds))
