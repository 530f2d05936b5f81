import pytest

from .harness import start_server


@pytest.fixture
def server(tmp_path):
    """A running server with shares 'share' (alice, bob), 'public' (guest), 'readonly'."""
    srv = start_server(tmp_path / "srv")
    yield srv
    code = srv.stop()
    assert code == 0, f"server did not stop cleanly ({code}):\n{srv.log()}"
    assert "Traceback" not in srv.log(), srv.log()


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory):
    """One server for a whole module of read-mostly tests."""
    srv = start_server(tmp_path_factory.mktemp("srv"))
    yield srv
    code = srv.stop()
    assert code == 0, f"server did not stop cleanly ({code}):\n{srv.log()}"
