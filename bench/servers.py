"""The one way to start a server for benchmarks and tests, and to read its CPU and memory.

Every server under test is a process of its own on a free loopback port (``launch``),
waited for until it answers (``wait_until_up``, ``start_one``, ``start_together``) and
stopped with SIGTERM, then SIGKILL (``Server.stop``). The chat runs as ``python app.py``
(eventlet, as in production) with its database, sessions, uploads and secret key in a
folder of the caller's (``launch_chat``, ``start_chat``); the relay runs as ``python
bench/baseline_relay.py``. The tests use this module (``tests/live_server.py``); nothing
here imports the tests.

Scaled out, the chat runs as ``make cluster`` runs it: ``python deploy/cluster.py`` starts
N workers on a schema of their own in the machine's PostgreSQL and a key prefix of their
own in Redis, and nginx in front of them on one public port.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from deploy.cluster import answers, find_nginx, redis_problem

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 5.0
# Another process can take a free port before a server binds it: so many launches, then.
START_ATTEMPTS = 3
LOG_TAIL_LINES = 60
# The password hash of every chat under test that registers many people: scrypt is slow on
# purpose and would dominate; this hash is still a real one.
CHEAP_PASSWORD_HASH = "pbkdf2:sha256:1000"
# Settings that throttle a user (messages per second, logins per minute): raised so that
# the benchmark measures the server, not the limits, while the limiter still runs. Their
# names are read from the defaults in app.py or settings.py: "..._RATE_LIMIT" settings
# take a rate string, "..._PER_SECOND", "..._BURST" and "..._ATTEMPTS" settings a number.
RATE_STRING_SETTING = re.compile(r'"([A-Z_]+_RATE_LIMIT)"\s*:')
NUMBER_SETTING = re.compile(r'"([A-Z_]+(?:_PER_SECOND|_PER_MINUTE|_BURST|_ATTEMPTS))"\s*:')
HIGH_RATE = "1000000 per second"
HIGH_NUMBER = "1000000"
# Niceness of the servers and the load generator (BENCH_NICE, e.g. -10 as root): on a
# machine shared with other work, a lower value keeps that work from spoiling the latencies.
NICE = int(os.environ.get("BENCH_NICE", "0"))
# The PostgreSQL and Redis of the test suite (tests/postgres.py, tests/redis_server.py).
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
CLUSTER_START_TIMEOUT_S = 90.0
CLUSTER_STOP_TIMEOUT_S = 30.0


@dataclass
class Server:
    """A running server under test: where to reach it, its files, output and process."""

    name: str
    url: str
    folder: Path
    log_path: Path
    process: subprocess.Popen[bytes]
    # Where its data lives: sqlite:///<file> or a PostgreSQL URL (None for the relay).
    database_url: str | None = None
    # Scaled out: the workers (pid -> port; their CPU is the server's), nginx's master
    # process, and the processes whose CPU is reported beside the server's (loadgen.mjs).
    workers: dict[int, int] = field(default_factory=dict)
    nginx_pid: int | None = None
    # Each of those processes and its start time (so a reused pid is never signalled).
    children: dict[int, int] = field(default_factory=dict)
    cpu_groups: dict[str, dict[str, object]] = field(default_factory=dict)
    stop_timeout_s: float = STOP_TIMEOUT_S

    @property
    def pid(self) -> int:
        """The server's process id."""
        return self.process.pid

    @property
    def server_pids(self) -> list[int]:
        """The processes that serve the chat: the workers, or the one server."""
        return list(self.workers) or [self.pid]

    @property
    def port(self) -> int:
        """The port clients connect to."""
        return int(self.url.rsplit(":", 1)[1])

    @property
    def database_path(self) -> Path | None:
        """The SQLite file, or None when the data is elsewhere (PostgreSQL, or none)."""
        if self.database_url and self.database_url.startswith("sqlite:///"):
            return Path(self.database_url.removeprefix("sqlite:///"))
        return None

    def query(self, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
        """Rows of ``sql`` read straight from the server's database, whichever it is."""
        from database import Database

        db = Database(self.database_url, str(ROOT), pool_size=1)
        conn = db.connect()
        try:
            return conn.all(sql, params)
        finally:
            db.release(conn)
            db.close()

    def rss_kib(self) -> int:
        """The server's resident memory in KiB (all its workers together)."""
        return sum(rss_kib(pid) for pid in self.server_pids)

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last lines the server (and each worker of a cluster) wrote."""
        logs = [self.log_path, *sorted(self.folder.glob("run/worker-*.log"))]
        tails = []
        for path in logs:
            if path.exists():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                tails.append((path.name, "\n".join(text) or "(no output)"))
        if len(tails) == 1:
            return tails[0][1]
        return "\n".join(f"-- {name}\n{text}" for name, text in tails) or "(no output)"

    def describe(self) -> str:
        """Whether the server still runs, then the tail of its output."""
        code = self.process.poll()
        state = "still running" if code is None else f"EXITED with code {code}"
        return f"({self.name} pid {self.process.pid}: {state})\n{self.log_tail()}"

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited in time; a cluster's workers and
        nginx too, should its supervisor have been killed before stopping them."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(self.stop_timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for pid, started in self.children.items():
            if _start_time(pid) == started:  # left running by a supervisor killed too soon
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def crash(self) -> None:
        """Kill the server with SIGKILL: no shutdown code runs, as in a crash."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()


class StartFailed(RuntimeError):
    """A server that never answered; the message says why and holds its output."""


def set_niceness() -> None:
    """In a child process before it starts: take the benchmark's niceness (BENCH_NICE)."""
    if NICE:
        os.setpriority(os.PRIO_PROCESS, 0, NICE)


def add_nice_option(parser: argparse.ArgumentParser, who: str) -> None:
    """The ``--nice`` option of a benchmark's command line (default BENCH_NICE)."""
    parser.add_argument(
        "--nice",
        type=int,
        default=NICE,
        help=f"niceness of {who} (negative needs root; or BENCH_NICE)",
    )


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rss_kib(pid: int) -> int:
    """Resident memory of a process in KiB, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE).group(1))


def limit_overrides(app_dir: Path) -> dict[str, str]:
    """Every per-user rate limit the chat at ``app_dir`` knows, raised out of the way."""
    source = "".join(
        (app_dir / name).read_text()
        for name in ("app.py", "settings.py")
        if (app_dir / name).exists()
    )
    numbers = set(NUMBER_SETTING.findall(source)) | {"MESSAGE_RATE_PER_SECOND", "MESSAGE_BURST"}
    settings = dict.fromkeys(sorted(numbers), HIGH_NUMBER)
    settings.update(dict.fromkeys(sorted(RATE_STRING_SETTING.findall(source)), HIGH_RATE))
    return settings


def launch(
    name: str,
    command: list[str],
    env: dict[str, str],
    folder: Path,
    port: int,
    cwd: Path = ROOT,
    log_path: Path | None = None,
) -> Server:
    """Start ``command`` listening on loopback ``port`` and return at once, its output
    appended to ``<folder>/<name>-<port>.log``; with ``log_path``, the process writes
    that log itself (nginx) and its output is dropped."""
    folder.mkdir(parents=True, exist_ok=True)
    captured = log_path is None
    log_path = log_path or folder / f"{name}-{port}.log"
    with contextlib.ExitStack() as stack:
        log = stack.enter_context(log_path.open("ab")) if captured else subprocess.DEVNULL
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=set_niceness if NICE else None,  # its children inherit it
        )
    url = f"http://127.0.0.1:{port}"
    return Server(name, url, folder, log_path, process, env.get("DATABASE_URL"))


def wait_until_up(
    server: Server, probe_path: str = "/login", timeout: float = START_TIMEOUT_S
) -> str | None:
    """Wait for ``probe_path`` to answer 200: None when it does, else why it never will
    (a server that did not answer in time is stopped)."""
    deadline = time.monotonic() + timeout
    while not answers(server.url + probe_path):
        if server.process.poll() is not None:
            return f"{server.name} exited with code {server.process.returncode} before answering"
        if time.monotonic() > deadline:
            server.stop()
            return f"{server.name} did not answer within {timeout:.0f} s"
        time.sleep(0.1)
    return None


def start_together(
    launch_all: Callable[[], list[Server]],
    probe_path: str = "/login",
    attempts: int = START_ATTEMPTS,
    timeout: float = START_TIMEOUT_S,
) -> list[Server]:
    """The servers ``launch_all`` starts, once each answers ``probe_path``. Another process
    can take a free port before a server binds it: then all are launched again (on ports
    ``launch_all`` chooses anew); any other failure raises StartFailed with the output."""
    for attempt in range(1, attempts + 1):
        started = launch_all()
        problems = [(server, wait_until_up(server, probe_path, timeout)) for server in started]
        failed = [(server, problem) for server, problem in problems if problem]
        if not failed:
            return started
        for server in started:
            server.stop()
        server, problem = failed[0]
        if "Address already in use" not in server.log_tail() or attempt == attempts:
            break
    raise StartFailed(f"{problem}: GET {server.url}{probe_path}\n{server.describe()}")


def start_one(launch_one: Callable[[], Server], **options: Any) -> Server:
    """The server ``launch_one`` starts, once it answers (``start_together``'s options)."""
    return start_together(lambda: [launch_one()], **options)[0]


def data_settings(folder: Path) -> dict[str, str]:
    """A chat's files under ``folder``: its SQLite database, sessions, uploads and secret
    key (kept in the folder, so a second start on it reopens the same data and logins)."""
    folder.mkdir(parents=True, exist_ok=True)
    key_file = folder / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_hex(32))
    return {
        "DATABASE_URL": f"sqlite:///{folder / 'chat.db'}",
        "SECRET_KEY": key_file.read_text(),
        "SESSION_FILE_DIR": str(folder / "sessions"),
        "UPLOAD_FOLDER": str(folder / "uploads"),
        "PYTHONUNBUFFERED": "1",
    }


def chat_settings(folder: Path, app_dir: Path) -> dict[str, str]:
    """What every benchmarked chat runs with: its files under ``folder``, a cheap password
    hash and the per-user limits out of the way."""
    return {
        **data_settings(folder),
        # scrypt is slow on purpose; registering thousands of users would dominate the run.
        "PASSWORD_HASH_METHOD": CHEAP_PASSWORD_HASH,
        # The load generator's thousands of users stand for as many machines but all come
        # from 127.0.0.1 (unless given source addresses): no cap per address.
        "MAX_CONNECTIONS_PER_ADDRESS": "0",
        **limit_overrides(app_dir),
    }


def in_process_settings(folder: Path, **overrides: Any) -> dict[str, Any]:
    """The settings of a chat built in this process (``create_app``) that keeps everything
    under ``folder`` (its database too, unless ``DATABASE_URL`` is among the overrides),
    with forms that need no CSRF token and a cheap password hash."""
    settings = {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key",
        "DATABASE_URL": f"sqlite:///{folder / 'chat.db'}",
        "SESSION_FILE_DIR": str(folder / "sessions"),
        "UPLOAD_FOLDER": str(folder / "uploads"),
        "WTF_CSRF_ENABLED": False,
        "PASSWORD_HASH_METHOD": CHEAP_PASSWORD_HASH,
    }
    settings.update(overrides)
    return settings


def launch_chat(
    folder: Path, settings: dict[str, str], app_dir: Path = ROOT, port: int | None = None
) -> Server:
    """``python app.py`` of ``app_dir`` on a free loopback port (or ``port``) with
    ``settings`` in its environment; returns at once, before it answers."""
    port = port or free_port()
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), **settings}
    return launch("chat", [sys.executable, "app.py"], env, folder, port, cwd=app_dir)


def start_chat(folder: Path, app_dir: Path = ROOT, **settings: str) -> Server:
    """Start ``python app.py`` from ``app_dir`` with all its data under ``folder``
    (or on the database of a ``DATABASE_URL`` setting), as benchmarks run it."""
    return start_one(
        lambda: launch_chat(folder, {**chat_settings(folder, app_dir), **settings}, app_dir)
    )


# -- scaled out: PostgreSQL, Redis, nginx and several workers ------------------------------


def cluster_problem() -> str | None:
    """None when nginx, Redis and PostgreSQL are all here; otherwise what is missing."""
    if find_nginx() is None:
        return "nginx is not installed (Debian: apt-get install nginx; or set NGINX)"
    problem = redis_problem(REDIS_URL)
    if problem:
        return problem
    try:
        import psycopg2
    except ImportError:
        return "psycopg2 is not installed"
    try:
        psycopg2.connect(POSTGRES_URL, connect_timeout=3).close()
    except psycopg2.OperationalError as error:
        return f"PostgreSQL not reachable at {POSTGRES_URL} ({str(error).strip()})"
    return None


@contextlib.contextmanager
def postgres_schema(prefix: str = "bench") -> Iterator[str]:
    """A DATABASE_URL whose tables live in a new schema of the machine's PostgreSQL
    (``TEST_POSTGRES_URL``), dropped afterwards."""
    import psycopg2

    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(POSTGRES_URL, connect_timeout=3)
    admin.autocommit = True
    try:
        admin.cursor().execute(f'CREATE SCHEMA "{schema}"')
        separator = "&" if "?" in POSTGRES_URL else "?"
        yield f"{POSTGRES_URL}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        admin.cursor().execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.close()


@contextlib.contextmanager
def redis_prefix(name: str = "bench") -> Iterator[str]:
    """A REDIS_PREFIX of one's own on the machine's Redis; its keys deleted afterwards."""
    import redis

    prefix = f"{name}-{uuid.uuid4().hex[:10]}"
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        yield prefix
    finally:
        keys = list(client.scan_iter(f"{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()


def count_rows(database_url: str, table: str) -> int:
    """Rows in a table of a PostgreSQL database (its schema chosen by the URL)."""
    import psycopg2

    with (
        contextlib.closing(psycopg2.connect(database_url, connect_timeout=3)) as db,
        db.cursor() as cursor,
    ):
        cursor.execute(f"SELECT COUNT(*) FROM {table}")
        return cursor.fetchone()[0]


def scaled_out_settings(database_url: str, prefix: str) -> dict[str, str]:
    """Settings that put a chat on PostgreSQL and Redis (sessions, limits, presence and
    Socket.IO's message queue)."""
    return {"DATABASE_URL": database_url, "REDIS_URL": REDIS_URL, "REDIS_PREFIX": prefix}


def free_port_run(count: int, attempts: int = 50) -> int:
    """The first of ``count`` consecutive loopback ports nobody listens on right now."""
    for _ in range(attempts):
        first = random.randrange(20_000, 30_000)
        if all(port_is_free(port) for port in range(first, first + count)):
            return first
    raise RuntimeError(f"no {count} consecutive free ports found")


def port_is_free(port: int) -> bool:
    """Whether nothing listens on this loopback port right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _start_time(pid: int) -> int | None:
    """When a process started (clock ticks after boot), or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2 :].split()[19])


def _children_of(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


def _comm_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _port_of(pid: int) -> int | None:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    ports = [entry[5:] for entry in environ if entry.startswith(b"PORT=")]
    return int(ports[-1]) if ports else None


def start_cluster(folder: Path, app_dir: Path, workers: int, settings: dict[str, str]) -> Server:
    """``python deploy/cluster.py`` of ``app_dir`` (what ``make cluster`` runs): ``workers``
    workers with ``settings`` (PostgreSQL and Redis among them), nginx in front on a free
    loopback port. Returned once nginx answers, with each worker's pid and port."""
    folder.mkdir(parents=True, exist_ok=True)
    launcher = app_dir / "deploy" / "cluster.py"
    if not launcher.exists():
        raise RuntimeError(f"{app_dir} has no deploy/cluster.py to start a cluster with")
    port = free_port()
    first_worker_port = free_port_run(workers)
    env = {
        **os.environ,
        **chat_settings(folder, app_dir),
        **settings,
        "HOST": "127.0.0.1",  # nginx's address; each worker gets 127.0.0.1 and its own port
        "PORT": str(port),
        "FIRST_WORKER_PORT": str(first_worker_port),
        "WORKERS": str(workers),
        "CLUSTER_RUN_DIR": str(folder / "run"),
    }
    server = launch("cluster", [sys.executable, str(launcher)], env, folder, port, cwd=app_dir)
    server.name = f"cluster of {workers}"
    server.stop_timeout_s = CLUSTER_STOP_TIMEOUT_S
    problem = wait_until_up(server, timeout=CLUSTER_START_TIMEOUT_S)
    if problem:
        server.stop()
        raise StartFailed(f"{problem}:\n{server.describe()}")
    process = server.process
    for child in _children_of(process.pid):
        server.children[child] = _start_time(child)
        if _comm_of(child) == "nginx":
            server.nginx_pid = child
        elif _port_of(child) in range(first_worker_port, first_worker_port + workers):
            server.workers[child] = _port_of(child)
    if len(server.workers) != workers or server.nginx_pid is None:
        server.stop()
        raise StartFailed(f"the cluster's processes were not all found:\n{server.describe()}")
    server.cpu_groups = {"nginx": {"tree": [server.nginx_pid]}}
    return server


def backing_cpu_groups() -> dict[str, dict[str, object]]:
    """Redis and PostgreSQL, found by process name, for loadgen.mjs's CPU accounting."""
    return {"redis": {"comm": "redis-server"}, "postgres": {"comm": "postgres"}}


def established_connections(port: int) -> dict[str, int]:
    """TCP connections established to ``port`` on this machine (IPv4), counted by the
    client's address: /proc/net/tcp, as ``ss`` reads it."""
    counts: dict[str, int] = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, state = fields[1], fields[2], fields[3]
        if state != "01" or int(local.split(":")[1], 16) != port:
            continue
        address = socket.inet_ntoa(bytes.fromhex(remote.split(":")[0])[::-1])
        counts[address] = counts.get(address, 0) + 1
    return counts


def source_addresses(count: int) -> list[str]:
    """``count`` loopback addresses, 127.0.1.1 on: Linux routes all of 127.0.0.0/8 to the
    loopback, so a client may bind any of them without set-up."""
    if count > 250 * 254:
        raise ValueError("too many source addresses")
    return [f"127.0.{1 + n // 250}.{1 + n % 250}" for n in range(count)]


def start_relay(folder: Path, max_connections: int = 10_000) -> Server:
    """Start the bare relay (bench/baseline_relay.py) on a free port."""

    def launch_relay() -> Server:
        port = free_port()
        command = [
            sys.executable,
            str(Path(__file__).with_name("baseline_relay.py")),
            "--port",
            str(port),
            "--max-connections",
            str(max_connections),
        ]
        # The relay imports serving.py's transport settings from this checkout.
        root = str(Path(__file__).resolve().parents[1])
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": root}
        return launch("relay", command, env, folder, port)

    return start_one(launch_relay, probe_path="/socket.io/?EIO=4&transport=polling")
