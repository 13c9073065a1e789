"""`make ui` listens on the loopback address unless asked otherwise, and never opens an
all-admins UI to the network."""

from __future__ import annotations

import pytest

from tools.main_job import MainJobError
from tools.ui import server_settings


def test_the_ui_listens_on_loopback_by_default_without_a_login() -> None:
    settings = server_settings({})
    assert settings["AIRFLOW__API__HOST"] == "127.0.0.1"
    assert settings["AIRFLOW__API__PORT"] == "8080"
    assert settings["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] == "True"


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::"])
def test_another_address_gets_a_login(host: str) -> None:
    settings = server_settings({"UI_HOST": host})
    assert settings["AIRFLOW__API__HOST"] == host
    assert settings["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] == "False"
    assert settings["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == "admin:admin"


def test_all_admins_on_another_address_is_refused_in_one_line() -> None:
    with pytest.raises(MainJobError) as refused:
        server_settings({"UI_HOST": "0.0.0.0", "UI_ALL_ADMINS": "true"})
    message = str(refused.value)
    assert "\n" not in message
    assert "UI_HOST=0.0.0.0 opens the UI beyond this machine" in message
    assert "unset UI_ALL_ADMINS" in message


def test_all_admins_on_loopback_is_the_default_anyway() -> None:
    assert server_settings({"UI_ALL_ADMINS": "true"})["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] == "True"


def test_a_port_that_is_not_a_number_is_refused() -> None:
    with pytest.raises(MainJobError, match="UI_PORT='web' is not a port number"):
        server_settings({"UI_PORT": "web"})
