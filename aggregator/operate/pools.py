"""The worker pool `[fetch]` asks for: local processes or a Dask cluster. A module of its own
so that `run --once` starts the processes before it imports the rest of the cycle."""

from __future__ import annotations

from ..config import FetchSettings
from .workers import Processes, Workers


def make_workers(conf: FetchSettings, *, start: bool = False) -> Workers:
    """The workers `[fetch]` asks for: on the Dask cluster at `cluster` (connected now: an
    unreachable scheduler is an error at start), else in `processes` local processes. Dask is
    imported only then: without a cluster the daemon never loads it. `start`: local processes
    start now, their fork server loading what a page needs while the caller goes on (run
    --once, which has all its pages at once; the daemon starts them at the first poll that
    needs them). The caller imports none of it for this: the server does."""
    if not conf.cluster:
        workers = Workers(conf.processes)
        if start:
            workers.start()
        return workers
    from .dask_workers import ClusterPool  # the optional extra aggregator[cluster]

    fallback = Processes(conf.processes) if conf.cluster_fallback and conf.processes else None
    return Workers(pool=ClusterPool(conf.cluster, fallback=fallback))
