import os

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

from pathlib import Path

import numpy as np
import pytest

TESTS = Path(__file__).parent
LAYERS = ("metrics", "engine", "inputs", "publishing", "flows", "cli", "meta_evaluation", "faults")
# Real servers a module starts (the rest is found from fixtures and skip reasons below).
SERVER_MODULES = {"test_mlflow_server.py": "mlflow_server", "test_dask.py": "dask", "test_serve.py": "prefect_server"}
_BINARIES = ("promtool", "amtool", "prometheus")


def pytest_collection_modifyitems(config, items):
    """Mark each test with its layer (its folder) and with the real servers it needs."""
    for item in items:
        path = Path(str(item.fspath))
        if TESTS not in path.parents:
            continue  # the doctests of the packages
        layer = path.relative_to(TESTS).parts[0]
        if layer in LAYERS:
            item.add_marker(getattr(pytest.mark, layer))
        fixtures = set(getattr(item, "fixturenames", ()))
        servers = set()
        if path.name in SERVER_MODULES:
            servers.add(SERVER_MODULES[path.name])
        if "prefect_harness" in fixtures:
            servers.add("prefect")
        if "prefect_api" in fixtures:
            servers.add("prefect_server")
        callspec = getattr(item, "callspec", None)
        if {"postgres_url", "postgres_databases"} & fixtures or (callspec and callspec.params.get("store_url") == "postgres"):
            servers.add("postgres")
        if any(b in str(m.kwargs.get("reason", "")) for m in item.iter_markers("skipif") for b in _BINARIES):
            servers.add("prometheus")
        for server in servers:
            item.add_marker(getattr(pytest.mark, server))


@pytest.fixture(scope="module")
def single_torch_thread():
    """Small blocks: extra OpenMP threads only compete on a loaded 2-core machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def prefect_harness():
    """One real ephemeral Prefect API (temporary SQLite DB) for the session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def home(tmp_path, monkeypatch):
    h = tmp_path / "home"
    monkeypatch.setenv("COLLAPSE_MONITOR_HOME", str(h))
    monkeypatch.delenv("COLLAPSE_MONITOR_STORE_URL", raising=False)
    monkeypatch.delenv("COLLAPSE_MONITOR_MLFLOW_URI", raising=False)
    monkeypatch.delenv("COLLAPSE_MONITOR_RULES", raising=False)
    return h


@pytest.fixture
def shrinking_rounds(tmp_path):
    """A reference and 4 rounds that contract towards the mean (recall falls)."""
    rng = np.random.default_rng(7)
    ref = rng.normal(size=(400, 8)).astype(np.float32)
    ref_path = tmp_path / "reference.npy"
    np.save(ref_path, ref)
    paths = []
    for r, scale in enumerate([1.0, 0.8, 0.6, 0.4]):
        p = tmp_path / f"round_{r}.npy"
        np.save(p, (rng.normal(size=(300, 8)) * scale).astype(np.float32))
        paths.append(p)
    return ref_path, paths


POSTGRES_SERVER = "postgresql+psycopg2://postgres@127.0.0.1:5432"


def _postgres_admin():
    """An autocommit connection to the local PostgreSQL, or the reason there is none."""
    try:
        import psycopg2
    except ImportError:
        return None, "psycopg2 is not installed (pip install -e '.[test]')"
    try:
        conn = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres", connect_timeout=3)
    except psycopg2.OperationalError as exc:
        return None, f"no PostgreSQL at 127.0.0.1:5432 ({str(exc).strip().splitlines()[0]})"
    conn.autocommit = True
    return conn, None


@pytest.fixture
def postgres_databases():
    """``make()`` -> the name of a fresh PostgreSQL database, every one dropped after the test; skips without a server."""
    import uuid

    admin, reason = _postgres_admin()
    if admin is None:
        pytest.skip(reason)
    made = []

    def make() -> str:
        name = f"cm_test_{uuid.uuid4().hex[:12]}"
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        made.append(name)
        return name

    try:
        yield make
    finally:
        with admin.cursor() as cur:
            for name in made:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def postgres_url(postgres_databases):
    """A fresh PostgreSQL database for one test (dropped after it), as a SQLAlchemy URL; skips without a server."""
    return f"{POSTGRES_SERVER}/{postgres_databases()}"


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request, tmp_path):
    """The store's URL on each backend users run: a SQLite file and a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("postgres_url")
