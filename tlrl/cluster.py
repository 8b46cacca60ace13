"""The plan of a benchmark or a curve (``tlrl.plan``) on Dask (the ``cluster`` extra).

``--cluster local`` or ``local:N`` starts a ``LocalCluster`` of N worker processes (default: one a
core) with the cores divided between them; ``tcp://HOST:PORT`` joins a running scheduler. Each task
(a feature, a fit) loads its data on the worker through the registry and cache, once per run and worker,
writes its result atomically into the results folder (or the feature cache) and returns nothing, so no
array passes through the scheduler; the results folder and the cache must be shared by the client and
the workers. A frame given in Python is scattered once. The client plans each next step from the last
one's results and rebuilds the summaries after each configuration or unit. Dask is imported only here,
and only once a cluster is asked for.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import uuid
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pandas as pd

from tlrl.errors import TlrlError
from tlrl.extras import require

if TYPE_CHECKING:
    from distributed import Client, Future

    from tlrl.plan import Driver, Task

CONNECT_TIMEOUT_S = 10  # how long to wait for a tcp:// scheduler


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
    if client.status != "running":
        raise TlrlError(f"the Dask client is {client.status}: give a running one")
    try:
        client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
    except TimeoutError:
        address = client.scheduler.address
        _close_quietly(client)
        raise TlrlError(f"the scheduler at {address} has no workers (none joined within {CONNECT_TIMEOUT_S} s); "
                        f"start some with 'dask worker {address}'") from None


def run_on(client: Client, drivers: dict[str, Driver], on_done: Callable[[], object], what: str) -> None:
    """Run the plan's drivers (``tlrl.plan``) on the cluster: each task as soon as the step it belongs to is
    planned and the features it needs are there; ``on_done`` after each driver ends.

    A failed task ends its driver with one warning line (the driver's name and the error) while the others go on;
    at the end a ``TlrlError`` names the failed ones. A cancelled task (a lost scheduler cancels them all)
    is a ``TlrlError`` at once, the client closed. Progress: a bar of finished tasks and the dashboard's
    address in a terminal, unless TQDM_DISABLE is set.
    """
    from distributed import as_completed
    from tqdm.auto import tqdm

    run = uuid.uuid4().hex[:8]  # a Dask key is unique to this run: another run's results are never taken for it
    shown = not os.environ.get("TQDM_DISABLE") and sys.stdout.isatty()
    if shown:
        print(f"dask dashboard: {client.dashboard_link}")
    bar = tqdm(desc=f"{what} tasks", unit="task", total=0, disable=not shown)
    futures: dict[str, Future] = {}
    steps: dict[str, list[Task]] = {}  # each unfinished driver's current step
    scattered: dict[int, Any] = {}
    pending = as_completed()
    address, failed = client.scheduler.address, []

    def submit(task: Task) -> Future:
        if task.key not in futures:
            needs = [submit(need) for need in task.needs]
            args = [_scatter(client, a, scattered) for a in task.args]
            futures[task.key] = client.submit(_call, task.fn, *args, needs=needs, key=f"{task.key} {run}", pure=False)
            pending.add(futures[task.key])
            bar.total += 1
            bar.refresh()
        return futures[task.key]

    def advance(name: str, results: list | None) -> None:
        """Send the driver its step's results; submit its next step, or end it."""
        while True:
            try:
                step = drivers[name].send(results)
            except StopIteration:
                steps.pop(name, None)
                on_done()
                return
            todo = [task for task in step if not task.done()]
            if todo:
                steps[name] = step
                for task in todo:
                    submit(task)
                return
            results = [task.result() for task in step]

    for name in drivers:
        advance(name, None)
    for future in pending:
        key = future.key.rsplit(" ", 1)[0]
        bar.update()
        waiting = [name for name, step in steps.items() if any(task.key == key for task in step)]
        if future.status == "finished":
            for name in waiting:
                if all(futures[t.key].status == "finished" for t in steps[name] if t.key in futures):
                    advance(name, [task.result() for task in steps[name]])
        elif future.status == "error":  # a feature's error comes back through the fits that need it
            error = future.exception()
            for name in waiting:
                warnings.warn(f"{what} {name} failed: {type(error).__name__}: {error}", stacklevel=2)
                failed.append(name)
                del steps[name]
        else:  # cancelled: the client lost its scheduler (which cancels every task), or the task lost a worker
            bar.close()
            lost = (f"lost the Dask scheduler at {address} ({what} {key} was cancelled)" if client.status != "running"
                    else f"the Dask scheduler at {address} cancelled {what} {key} (a worker was lost)")
            _close_quietly(client)
            raise TlrlError(f"{lost}; the finished {what}s' results are kept: rerun the same command to resume")
    bar.close()
    if failed:
        raise TlrlError(f"{len(failed)} of {len(drivers)} {what}s failed ({', '.join(sorted(failed))}); the others' "
                        "results are kept: rerun the same command to retry them")


def _call(fn: Callable[..., None], *args: Any, needs: list) -> None:
    """``fn(*args)`` once the tasks it ``needs`` are done (Dask waits for them: they are its arguments)."""
    fn(*args)


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
