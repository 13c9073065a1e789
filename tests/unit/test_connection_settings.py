"""tools/postgres: Airflow's metadata database URL keeps any password whole (ConnectionSettings.sqlalchemy_url),
and the ports servers are given are not ones an outgoing connection can take (free_port)."""

from __future__ import annotations

import socket

import pytest
from sqlalchemy.engine import make_url

from tools.postgres import EPHEMERAL_RANGE, FIRST_PORT, ConnectionSettings, free_port


@pytest.mark.parametrize("password", ["plain", "p@ss/word:with%signs#?", "spaces and ünïcode"])
def test_the_url_gives_back_the_user_and_password_it_was_built_from(password: str) -> None:
    settings = ConnectionSettings("127.0.0.1", 5433, "team@corp", password, "airflow_meta")
    url = make_url(settings.sqlalchemy_url())
    assert (url.drivername, url.host, url.port) == ("postgresql+psycopg2", "127.0.0.1", 5433)
    assert url.database == "airflow_meta"
    assert (url.username, url.password) == ("team@corp", password)


def test_free_ports_lie_below_the_ephemeral_range_and_are_never_handed_out_twice() -> None:
    """Outgoing connections take their local ports from the ephemeral range; a server's port from
    there could be taken between free_port() and the server's bind (an API server lost its port so)."""
    ephemeral_low = int(EPHEMERAL_RANGE.read_text().split()[0])
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == len(ports)
    assert all(FIRST_PORT <= port < ephemeral_low for port in ports), ports
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", ports[-1]))  # free when handed out
