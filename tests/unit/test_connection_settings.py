"""ConnectionSettings.sqlalchemy_url: Airflow's metadata database URL keeps any password whole."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import make_url

from tools.postgres import ConnectionSettings


@pytest.mark.parametrize("password", ["plain", "p@ss/word:with%signs#?", "spaces and ünïcode"])
def test_the_url_gives_back_the_user_and_password_it_was_built_from(password: str) -> None:
    settings = ConnectionSettings("127.0.0.1", 5433, "team@corp", password, "airflow_meta")
    url = make_url(settings.sqlalchemy_url())
    assert (url.drivername, url.host, url.port) == ("postgresql+psycopg2", "127.0.0.1", 5433)
    assert url.database == "airflow_meta"
    assert (url.username, url.password) == ("team@corp", password)
