"""The variables of a throwaway local Airflow stack (docker/compose.yaml): free ports, fresh
secrets, and the settings and .env files it reads. The tests and the benchmark each start one
beside anything else running on the machine (`make up` uses the defaults and
.local/stack/secrets.env instead)."""

from __future__ import annotations

import base64
import os
import secrets
import socket
from pathlib import Path

from tools.postgres import free_port


def throwaway_stack_env(folder: Path, env: dict[str, str]) -> dict[str, str]:
    """STACK_* variables for a stack whose airflow_settings.yaml is `folder`/airflow_settings.yaml
    (the caller writes it) and whose .env holds `env`."""
    env_file = folder / ".env"
    env_file.write_text("".join(f"{name}={value}\n" for name, value in env.items()))
    return {
        "STACK_AIRFLOW_PORT": str(free_port()),
        "STACK_POSTGRES_PORT": str(free_port()),
        "STACK_LOG_PORT": str(free_port()),
        "STACK_TRIGGERER_LOG_PORT": str(free_port()),
        "STACK_POSTGRES_PASSWORD": secrets.token_urlsafe(16),
        "STACK_FERNET_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "STACK_JWT_SECRET": secrets.token_urlsafe(32),
        "STACK_SETTINGS_FILE": str(folder / "airflow_settings.yaml"),
        "STACK_ENV_FILE": str(env_file),
        "STACK_HOSTNAME": socket.gethostname(),
    }
