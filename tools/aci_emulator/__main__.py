"""`python -m tools.aci_emulator --port 8443 --startup-delay 10`: run the emulator until Ctrl-C and
print the environment a client (Airflow) needs to reach it."""

from __future__ import annotations

import argparse
import contextlib
import shlex
import signal
import sys
import threading
from pathlib import Path

from tools.aci_emulator import AciEmulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="listen port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--startup-delay", type=float, default=0.0, help="seconds before a group's containers start")
    parser.add_argument("--state-dir", type=Path, help="where the throwaway CA and token file go (default: a temp dir)")
    parser.add_argument("--network", default="host", help="docker network for the containers (default: host)")
    parser.add_argument("--conn-id", default="azure_container_instances", help="Airflow connection id to print")
    args = parser.parse_args(argv)

    emulator = AciEmulator(args.port, args.startup_delay, args.state_dir, args.network)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with emulator:
        print(f"aci-emulator: listening on {emulator.url}, start-up delay {args.startup_delay:g} s", flush=True)
        print("# export these in the shell that runs Airflow:", flush=True)
        env = {**emulator.client_env(), **emulator.connection_env(args.conn_id)}
        for key, value in env.items():
            print(f"export {key}={shlex.quote(value)}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
        print(f"aci-emulator: stopping; deleting {len(emulator.groups())} container group(s) still held", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
