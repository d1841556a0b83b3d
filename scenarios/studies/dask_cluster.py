"""The Dask cluster a sweep runs on.

By default a ``distributed.LocalCluster`` with one single-threaded worker
process per core (the engine is numpy + Pyomo/HiGHS: processes, not threads; BLAS and
OpenMP pools are pinned to one thread in each worker); ``scheduler="tcp://host:8786"``
connects to a running scheduler, ``client=`` uses a Dask ``Client`` you already have.
Workers must be able to import this package and write to ``out_dir`` (a shared
filesystem when the cluster spans machines).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from scenarios.engine.malloc import MALLOC_ENV
from scenarios.errors import ScenarioError

if TYPE_CHECKING:
    from distributed import Client

WORKER_ENV = {
    **MALLOC_ENV,
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
}
"""Environment of local worker processes: one BLAS/OpenMP thread each, glibc's allocator
held steady (:mod:`scenarios.engine.malloc`)."""


def local_cluster_client(n_workers: int | None = None) -> Client:
    """A Dask client on a new local cluster: ``n_workers`` processes (default: all cores),
    one thread each, BLAS pinned to one thread, its HTTP server on a free port.

    Close it with ``client.close(); client.cluster.close()``.
    """
    import logging

    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=n_workers or os.cpu_count() or 1,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",  # its HTTP server on a free port: 8787 may be taken
        silence_logs=logging.ERROR,
        env=WORKER_ENV,
    )
    return Client(cluster)


#: How long to try to reach a ``--scheduler`` before giving up [s].
SCHEDULER_TIMEOUT_S = 10.0


def connect_client(scheduler: str | None, n_workers: int | None = None) -> Client:
    """A client on the Dask ``scheduler`` (``tcp://host:8786``) or, without one, on a new
    local cluster of ``n_workers`` (:func:`local_cluster_client`).

    Raises
    ------
    ScenarioError
        The scheduler cannot be reached within :data:`SCHEDULER_TIMEOUT_S`, or its
        address is not one Dask knows.
    """
    if not scheduler:
        return local_cluster_client(n_workers)
    from distributed import Client

    try:
        return Client(scheduler, timeout=SCHEDULER_TIMEOUT_S)
    except (OSError, ValueError) as exc:  # OSError: refused or timed out; ValueError: scheme
        raise ScenarioError(
            [f"--scheduler {scheduler}: cannot connect to the Dask scheduler ({exc})"]
        ) from None


def close_client(client: Client) -> None:
    """Close ``client`` and, when it started one, its local cluster."""
    cluster = client.cluster
    client.close()
    if cluster is not None:
        cluster.close()
