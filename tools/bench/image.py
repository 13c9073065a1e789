"""`python -m tools.bench.image`: the dbt runtime image's size, start-up, and per-task time with and
without the partial parse baked into it, side by side.

Builds the image with ci/build-image.sh when its inputs changed (Docker engine: ci/ensure-docker.sh),
starts a throwaway PostgreSQL, seeds it through the image, then times whole `docker run --rm` calls
(create, start, dbt, remove), alternating the variants so that load on the machine hits them alike:
  - `dbt --version`, with no network and with the host network (dbt asks PyPI for the latest
    version with a 1 s timeout per package, which costs up to 2 s where PyPI cannot be reached);
  - one model, `dbt run --select stg_customers`: the image as shipped (baked partial parse,
    re-keyed by the entrypoint to this container's host, port and user), the same dbt started
    without the entrypoint (dbt rejects the baked parse: "profile has changed"), and
    `--no-partial-parse`;
  - the same for one model of a synthetic project of --models models (tools/synthetic_project.py),
    built into an image of its own: what the baked parse saves grows with the project.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tools.bench import common
from tools.bench.common import BENCH_DIR, BenchError
from tools.local_env import QUIET_DBT, REPO_ROOT
from tools.postgres import LocalPostgres, free_port

IMAGE = "airflow-dbt-blueprint/dbt-runtime:local"
SYNTHETIC_IMAGE = "airflow-dbt-blueprint/dbt-runtime-synthetic-{models}"
RESULT_FILE = BENCH_DIR / "image.json"
TARGET_SIZE_MB = 250
TARGET_VERSION_SECONDS = 2.0
TARGET_SAVED = 0.50
REJECTED = "Unable to do partial parsing"
ONE_MODEL = ("run", "--select", "stg_customers")
SYNTHETIC_MODEL = ("run", "--select", "stg_0001")
VARIANTS: dict[str, dict[str, Any]] = {
    "version_no_network": {"label": "dbt --version (no network)", "args": ("dbt", "--version"), "network": "none"},
    "version_host_network": {"label": "dbt --version (host network)", "args": ("dbt", "--version")},
    "baked": {"label": "one model, baked partial parse (as shipped)", "args": ("dbt", *ONE_MODEL), "db": True},
    "baked_plain_dbt": {
        "label": "one model, baked, dbt without the entrypoint", "args": ONE_MODEL, "db": True,
        "entrypoint": "/opt/dbt/bin/dbt",
    },
    "no_partial_parse": {
        "label": "one model, --no-partial-parse", "args": ("dbt", "--no-partial-parse", *ONE_MODEL), "db": True,
    },
    "synthetic_baked": {
        "label": "{models} models: one model, baked (as shipped)", "args": ("dbt", *SYNTHETIC_MODEL), "db": True,
        "image": "synthetic",
    },
    "synthetic_no_partial_parse": {
        "label": "{models} models: one model, --no-partial-parse", "db": True, "image": "synthetic",
        "args": ("dbt", "--no-partial-parse", *SYNTHETIC_MODEL),
    },
}  # fmt: skip


def docker(*args: str, env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["docker", *args], env={**os.environ, **(env or {})}, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600,
    )  # fmt: skip
    if check and result.returncode != 0:
        raise BenchError(f"`docker {' '.join(args[:4])} ...` failed: {result.stdout.strip()[-500:]}")
    return result


def run_container(variant: dict[str, Any], database_env: dict[str, str], image: str = IMAGE) -> tuple[float, str]:
    """Wall time of one `docker run --rm` and its output; variables passed by name, not value."""
    env = database_env if variant.get("db") else {}
    args = ["run", "--rm", "--network", variant.get("network", "host")]
    for name in env:
        args += ["-e", name]
    if "entrypoint" in variant:
        args += ["--entrypoint", variant["entrypoint"]]
    start = time.monotonic()
    result = docker(*args, image, *variant["args"], env=env)
    return time.monotonic() - start, result.stdout


def build_image(**env: str) -> None:
    result = subprocess.run(
        ["bash", "ci/build-image.sh"], cwd=REPO_ROOT, env={**os.environ, **env}, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise BenchError(f"ci/build-image.sh failed: {(result.stderr.strip().splitlines() or ['?'])[-1]}")
    print(result.stdout.strip())


def image_facts() -> dict[str, Any]:
    size = int(docker("image", "inspect", "-f", "{{.Size}}", IMAGE).stdout.strip())
    count = (
        "import pathlib, sys; site = pathlib.Path(sys.prefix, 'lib').glob('python3*/site-packages');"
        "mods = [m for s in site for m in s.rglob('*.py')];"
        "print(len(mods), sum(1 for m in mods if any((m.parent / '__pycache__').glob(m.stem + '.*.pyc'))))"
    )
    modules, compiled = docker("run", "--rm", "--network", "none", "--entrypoint", "/opt/dbt/bin/python",
                               IMAGE, "-c", count).stdout.split()  # fmt: skip
    return {"size_mb": size / 1e6, "modules": int(modules), "compiled": int(compiled)}


def measure(runs: int, database_env: dict[str, str], images: dict[str, str]) -> dict[str, list[float]]:
    variants = [name for name in VARIANTS if VARIANTS[name].get("image", "default") in images]
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for round_number in range(runs):
        for name in variants if round_number % 2 == 0 else reversed(variants):
            image = images[VARIANTS[name].get("image", "default")]
            seconds, output = run_container(VARIANTS[name], database_env, image)
            rejected = REJECTED in output
            if name.endswith("baked") and rejected:
                raise BenchError("the shipped image re-parsed the project: the baked partial parse was not reused")
            if name == "baked_plain_dbt" and not rejected:
                raise BenchError("plain dbt reused the baked partial parse: re-keying no longer needed?")
            samples[name].append(seconds)
    return samples


def print_report(facts: dict[str, Any], summaries: dict[str, common.Summary], models: int) -> None:
    saved = 1 - summaries["baked"].median / summaries["no_partial_parse"].median
    size_ok = facts["size_mb"] <= TARGET_SIZE_MB
    version_ok = summaries["version_no_network"].median <= TARGET_VERSION_SECONDS
    saved_ok = saved >= TARGET_SAVED
    size_target = f"<= {TARGET_SIZE_MB} MB {'ok' if size_ok else 'MISSED'}"
    rows = [["image size", "", f"{facts['size_mb']:.0f} MB", "", size_target]]
    for name, summary in summaries.items():
        variant, target = VARIANTS[name], ""
        if name == "version_no_network":
            target = f"<= {TARGET_VERSION_SECONDS:.0f} s {'ok' if version_ok else 'MISSED'}"
        elif name == "baked":
            target = f"saves {saved:.0%} vs --no-partial-parse (>= {TARGET_SAVED:.0%} {'ok' if saved_ok else 'MISSED'})"
        elif name == "synthetic_baked":
            larger = 1 - summary.median / summaries["synthetic_no_partial_parse"].median
            target = f"saves {larger:.0%} vs --no-partial-parse"
        rows.append([variant["label"].format(models=models), str(summary.runs), common.format_seconds(summary.min),
                     common.format_seconds(summary.median), target])  # fmt: skip
    print()
    print(common.format_table(["container start to exit", "runs", "min s", "median s", "target"], rows))
    print(
        f"image venv byte-compiled: {facts['compiled']}/{facts['modules']} modules (unchecked-hash .pyc); "
        f"load average at end {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    print(f"targets: {'all met' if size_ok and version_ok and saved_ok else 'some MISSED (see above)'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="containers per variant (default 5)")
    parser.add_argument("--models", type=int, default=1000, help="models in the synthetic project (0: skip it)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    server_dir = Path(tempfile.mkdtemp(prefix="bench-image-pg-"))
    server = LocalPostgres(server_dir, free_port())
    images = {"default": IMAGE}
    try:
        build_image()
        facts = image_facts()
        if args.models:
            from tools import synthetic_project

            synthetic_dir = BENCH_DIR / f"synthetic-{args.models}"
            synthetic_project.write_project(synthetic_dir, args.models)
            name = SYNTHETIC_IMAGE.format(models=args.models)
            build_image(DBT_PROJECT=str(synthetic_dir), IMAGE_NAME=name)
            images["synthetic"] = f"{name}:local"
        database = server.start()
        database_env = {**database.as_env(), **QUIET_DBT}
        del database_env["POSTGRES_SCHEMA"]  # the profile's default schema, which the parse was baked for
        for image in images.values():
            run_container({"args": ("dbt", "seed"), "db": True}, database_env, image)
        samples = measure(args.runs, database_env, images)
    except (BenchError, OSError, RuntimeError, subprocess.SubprocessError) as error:
        print(f"error: {common.one_line(error)}", file=sys.stderr)
        return 1
    finally:
        server.destroy()
        shutil.rmtree(server_dir, ignore_errors=True)  # as root the server lives elsewhere (tools.postgres)
    summaries = {name: common.summarize(values) for name, values in samples.items()}
    print_report(facts, summaries, args.models)
    total = time.monotonic() - started
    common.write_json(
        RESULT_FILE,
        {
            "images": images, "facts": facts, "samples": samples,
            "summaries": {name: summary.as_dict() for name, summary in summaries.items()},
            "total_seconds": total, "load_average_at_end": os.getloadavg(),
        },
    )  # fmt: skip
    print(f"wrote {common.display_path(RESULT_FILE)}; image benchmark took {total:.0f} s")
    return 0  # a missed target is a finding to report, not a failed run


if __name__ == "__main__":
    sys.exit(main())
