"""dbt's partial-parse manifest kept deserialised in the warm dbt server, for its forks to inherit.

Every per-model task runs dbt with the same `target/partial_parse.msgpack` (Cosmos copies it in
from its cache, and dbt does not rewrite it when nothing changed), and dbt's partial parse starts
by deserialising it: 0.17 s of a 0.65 s warm `dbt ls` at 300 models, 0.46 s of 1.7 s at 1,000.
Here the server deserialises each msgpack once and keeps the object; a fork inherits it
(copy-on-write) and dbt's deserialisation step returns it when, and only when, the sha256 of the
bytes dbt has just read matches. Identical bytes give an identical object, so everything dbt does
next is unchanged: `is_partial_parsable` (version, vars, profile, project hashes, env vars) and the
file-hash comparison still run, and an edited model is re-parsed as before.

The server also freezes its objects (gc.freeze) before it serves and after each load: a fork's
garbage collector would otherwise traverse every inherited object, the cached manifests and dbt
itself, writing to each one's header and so copying its page (measured in a fork at 300 models:
0.3 s of CPU per command; cache and freeze together took a warm `dbt ls` from 0.80 to 0.39 s CPU).

How the server learns which msgpack to load: a fork that misses writes the bytes it read to the
server's private spool folder (the task's own copy may be deleted when the task ends) and wakes
the server through a pipe; the server loads one spooled file at a time between connections, so a
waiting command is never held up by more than one deserialisation. The server only reads the
bytes and deserialises them: it never starts a thread (a fork keeps only the forking thread) and
never touches a cached object afterwards, so every fork gets it as deserialised.

The server holds nothing a task did not already leave on disk: the msgpack is the file Cosmos keeps
in its cache (it can hold the values of env vars the project's files read, as dbt saves them to
notice a change); the spool lies in the user's private socket folder and each file is removed
once read. A new msgpack costs the server one deserialisation (0.15 s at 300 models, 0.45 s at
1,000), during which a new connection waits.

WARM_DBT_MANIFEST_CACHE=0 turns this off (forks then deserialise as plain dbt does; nothing is frozen).
Standard library and dbt only: this runs in dbt's venv next to server.py.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import hashlib
import os
import shutil
import sys
import time
from collections import OrderedDict
from pathlib import Path

ENABLED = os.environ.get("WARM_DBT_MANIFEST_CACHE", "1") != "0"
# A worker serves one or a few projects; an entry at 1,000 models grew the server by ~30 MB (max RSS).
ENTRIES = 4
# What a fork writes to the server's log: one line per command (hit or miss), for operators and tests.
LOG_PREFIX = "warm dbt: manifest cache"

_cache: OrderedDict[str, object] = OrderedDict()
_spool: Path | None = None
_wake_read: int | None = None
_wake_write: int | None = None
_server_log: int | None = None


def start(socket_path: str) -> int | None:
    """In the server, before it serves: the spool folder and the wake-up pipe; the pipe's read
    end for the server to wait on, or None when the cache is off."""
    global _spool, _wake_read, _wake_write
    if not ENABLED:
        return None
    _spool = Path(socket_path + ".manifests")
    shutil.rmtree(_spool, ignore_errors=True)  # left by a server that died
    _spool.mkdir(mode=0o700)
    _wake_read, _wake_write = os.pipe()
    for fd in (_wake_read, _wake_write):
        # Forks must never block on a full pipe, nor the server on an empty one.
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)
    _freeze()  # dbt as imported and warmed up: forks' collections leave it alone
    return _wake_read


def stop() -> None:
    if _spool is not None:
        shutil.rmtree(_spool, ignore_errors=True)


def pending() -> bool:
    """Whether the server has a spooled msgpack to load (then it polls instead of sleeping)."""
    return _spool is not None and any(_spool.glob("*.msgpack"))


def load_one() -> None:
    """In the server, between connections: load the newest spooled msgpack into the cache."""
    _drain_wake_ups()
    spooled = sorted(_spool.glob("*.msgpack"), key=_mtime, reverse=True) if _spool else []
    if not spooled:
        return
    path = spooled[0]
    data = _take(path)
    digest = hashlib.sha256(data).hexdigest() if data is not None else ""
    if digest != path.stem or digest in _cache:  # a torn or duplicate file: nothing to keep
        return
    started = time.monotonic()
    manifest = _deserialise(data)
    if manifest is None:
        return
    _keep(digest, manifest)
    seconds = time.monotonic() - started
    print(
        f"{LOG_PREFIX}: loaded {digest[:12]} ({len(data)} bytes) in {seconds:.2f} s; {gc.get_freeze_count()} objects"
        " frozen",
        file=sys.stderr,
        flush=True,
    )


def _keep(digest: str, manifest: object) -> None:
    """Cache the manifest, evicting the oldest loaded, and freeze it for the forks."""
    _cache[digest] = manifest
    if len(_cache) > ENTRIES:
        while len(_cache) > ENTRIES:
            _cache.popitem(last=False)  # forks already running keep their own copy
        # Frozen objects are never collected: what an evicted manifest leaves in reference
        # cycles must be collectable again before everything is frozen anew.
        gc.unfreeze()
    _freeze()


def _freeze() -> None:
    """Collect first (only what is not frozen yet, so it is quick): garbage frozen stays for good."""
    gc.collect()
    gc.freeze()


def _drain_wake_ups() -> None:
    with contextlib.suppress(BlockingIOError, OSError, TypeError):
        while os.read(_wake_read, 4096):
            pass


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def _take(path: Path) -> bytes | None:
    """The file's bytes, and the file gone in any case (else the server would retry it forever)."""
    try:
        return path.read_bytes()
    except OSError:
        return None
    finally:
        with contextlib.suppress(OSError):
            path.unlink()


def _deserialise(data: bytes) -> object | None:
    """Exactly dbt's own step (ManifestLoader.read_manifest_for_partial_parse)."""
    from dbt.contracts.graph.manifest import Manifest
    from dbt.parser.manifest import extended_mashumuro_decoder

    try:
        return Manifest.from_msgpack(data, decoder=extended_mashumuro_decoder)
    except Exception as error:  # a msgpack dbt cannot read: the fork's own dbt reports it
        print(f"{LOG_PREFIX}: not loaded ({type(error).__name__})", file=sys.stderr, flush=True)
        return None


def use_in_fork() -> None:
    """In a fork, before dbt runs: dbt's deserialisation step consults the inherited cache."""
    global _server_log
    if not ENABLED:
        return
    from dbt.contracts.graph.manifest import Manifest
    from dbt.parser.manifest import extended_mashumuro_decoder

    if _wake_read is not None:
        os.close(_wake_read)
    _server_log = os.dup(2)  # still the server's log: the caller's streams replace fd 2 later
    original = Manifest.from_msgpack.__func__

    def from_msgpack(cls, data, decoder=None, **kwargs):
        if cls is not Manifest or decoder is not extended_mashumuro_decoder or kwargs:
            return original(cls, data, decoder=decoder, **kwargs)
        digest = hashlib.sha256(data).hexdigest()
        cached = _cache.get(digest)
        if cached is None:
            manifest = original(cls, data, decoder=decoder)
            _report_miss(digest, data)
            return manifest
        _log(f"hit {digest[:12]}")
        return _as_deserialised(cached)

    Manifest.from_msgpack = classmethod(from_msgpack)


def _as_deserialised(manifest: object) -> object:
    """What Manifest.__post_deserialize__ gives a fresh object: its own lock. The inherited one is
    a named semaphore that the server and every other fork share."""
    from dbt.mp_context import get_mp_context

    manifest._lock = get_mp_context().Lock()
    return manifest


def _report_miss(digest: str, data: bytes) -> None:
    """Spool the bytes for the server (atomically: it never reads a half-written file) and wake it."""
    _log(f"miss {digest[:12]}")
    if _spool is None:
        return
    target = _spool / f"{digest}.msgpack"
    if target.exists():
        return
    temporary = _spool / f"{digest}.{os.getpid()}.tmp"
    try:
        temporary.write_bytes(data)
        os.rename(temporary, target)
        os.write(_wake_write, b"\n")
    except OSError:  # a full disk or pipe: the server only misses this chance to cache
        with contextlib.suppress(OSError):
            temporary.unlink()


def _log(message: str) -> None:
    with contextlib.suppress(OSError, TypeError):
        os.write(_server_log, f"{LOG_PREFIX}: {message}\n".encode())
