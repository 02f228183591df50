"""A Dask client for ``restore --workers N`` / ``--scheduler ADDRESS`` (the optional ``dask`` extra)."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

from ._errors import ClearsightError

__all__ = ["dask_client"]


def _import_distributed():
    try:
        import distributed
    except ImportError:
        raise ClearsightError(
            "--workers and --scheduler need Dask: pip install 'clearsight[dask]' (dask.distributed)"
        ) from None
    return distributed


@contextlib.contextmanager
def dask_client(workers: int | None = None, scheduler: str | None = None, quiet: bool = True) -> Iterator:
    """A ``distributed.Client``: on a new local cluster of ``workers`` processes (one thread each), or connected
    to the running scheduler at ``scheduler`` (``tcp://HOST:8786``). The local cluster is shut down on exit; an
    existing cluster is left running."""
    if (workers is None) == (scheduler is None):
        raise ClearsightError("give either a number of workers or a scheduler address")
    distributed = _import_distributed()
    if quiet:  # the cluster's own start/stop chatter; warnings and errors still show
        for name in ("distributed", "distributed.scheduler", "distributed.nanny", "distributed.worker"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    if scheduler is not None:
        try:
            client = distributed.Client(scheduler, timeout="20s")
        except (OSError, TimeoutError) as e:
            raise ClearsightError(f"cannot reach the Dask scheduler at {scheduler}: {e}") from None
        try:
            yield client
        finally:
            client.close()
        return
    if workers < 1:
        raise ClearsightError(f"--workers must be at least 1, got {workers}")
    cores = os.cpu_count() or 1
    cluster = distributed.LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",  # no fixed port: several clusters may run on one machine
        silence_logs=logging.CRITICAL if quiet else logging.WARNING,
        # each worker process runs its numerical libraries on its share of the cores
        env={k: str(max(1, cores // workers)) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")},
    )
    try:
        with distributed.Client(cluster) as client:
            yield client
    finally:
        cluster.close()
