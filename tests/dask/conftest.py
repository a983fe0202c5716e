"""Fixtures of the Dask backend tests: one LocalCluster (2 worker processes on 127.0.0.1)
per module, and orchestrators on it (the ``orchestrators`` fixture of tests/conftest.py,
with ``backend="dask"``) that are cancelled and closed after each test."""

from __future__ import annotations

import pytest

try:
    import distributed
except ImportError:  # the [dask] extra is not installed: nothing here can run
    distributed = None
    collect_ignore_glob = ["test_*.py"]


def pytest_configure(config):
    config.addinivalue_line("markers", "dask: runs missions on a dask.distributed cluster")


@pytest.fixture(scope="module")
def cluster():
    cluster = distributed.LocalCluster(
        n_workers=2,
        processes=True,
        threads_per_worker=1,
        host="127.0.0.1",
        dashboard_address=None,
        # The scheduler serves /health and /metrics even without a dashboard, on 8787 by
        # default: taken by any other cluster on this machine (a warning, so an error here).
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
    )
    yield cluster
    cluster.close()


@pytest.fixture(scope="module")
def client(cluster):
    # Closed before the cluster (fixture teardown order), so no comm breaks under it.
    client = distributed.Client(cluster, set_as_default=False)
    yield client
    client.close()


@pytest.fixture
def dask_orchestrators(orchestrators, client):
    """``dask_orchestrators(max_concurrent=2, **options)`` -> ``orchestrators(...)`` with
    ``backend="dask"`` on the module's cluster (cancelled and closed after the test)."""

    def make(max_concurrent: int = 2, **options):
        options.setdefault("heartbeat_secs", 0.3)
        options.setdefault("client", client)
        return orchestrators(max_concurrent, backend="dask", **options)

    yield make
    orchestrators.cleanup()
    # A test may have killed a worker: its nanny restarts it; later tests expect two.
    client.wait_for_workers(2, timeout=60)
