"""Start the servers under test on a free loopback port, and read their CPU and memory.

The chat runs as ``python app.py`` (eventlet, as in production) with its database,
sessions and uploads in a folder of the benchmark's; the relay runs as
``python bench/baseline_relay.py``. Both are stopped with SIGTERM, then SIGKILL.

Scaled out, the chat runs as ``make cluster`` runs it: ``python deploy/cluster.py`` starts
N workers on a schema of their own in the machine's PostgreSQL and a key prefix of their
own in Redis, and nginx in front of them on one public port.
"""

from __future__ import annotations

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
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 5.0
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
# urllib would send loopback requests through an HTTP(S)_PROXY from the environment.
_direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
# The PostgreSQL and Redis of the test suite (tests/postgres.py, tests/redis_server.py).
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
CLUSTER_START_TIMEOUT_S = 90.0
CLUSTER_STOP_TIMEOUT_S = 30.0


@dataclass
class Server:
    """A running server under test: where to reach it and its process."""

    name: str
    url: str
    folder: Path
    log_path: Path
    process: subprocess.Popen[bytes]
    database_path: Path | None = None
    # PostgreSQL instead of SQLite: where the stored messages are counted.
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

    def rss_kib(self) -> int:
        """The server's resident memory in KiB (all its workers together)."""
        return sum(rss_kib(pid) for pid in self.server_pids)

    def log_tail(self, lines: int = 30) -> str:
        """The last lines the server (and each of its workers) wrote."""
        logs = [self.log_path, *sorted(self.folder.glob("run/worker-*.log"))]
        tails = []
        for path in logs:
            if path.exists():
                text = path.read_text(errors="replace").splitlines()
                tails.append(f"-- {path.name}\n" + "\n".join(text[-lines:]))
        return "\n".join(tails)

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


def set_niceness() -> None:
    """In a child process before it starts: take the benchmark's niceness (BENCH_NICE)."""
    if NICE:
        os.setpriority(os.PRIO_PROCESS, 0, NICE)


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


def answers(url: str) -> bool:
    """True when ``url`` answers 200."""
    try:
        with _direct.open(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _start(
    name: str,
    command: list[str],
    cwd: Path,
    env: dict[str, str],
    folder: Path,
    port: int,
    probe_path: str,
) -> Server:
    log_path = folder / f"{name}-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=set_niceness,
        )
    server = Server(name, f"http://127.0.0.1:{port}", folder, log_path, process)
    deadline = time.monotonic() + START_TIMEOUT_S
    while not answers(server.url + probe_path):
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"{name} did not start:\n{server.log_tail()}")
        time.sleep(0.1)
    return server


def chat_settings(folder: Path, app_dir: Path) -> dict[str, str]:
    """What every benchmarked chat runs with: its files under ``folder``, a cheap password
    hash and the per-user limits out of the way."""
    return {
        "DATABASE_URL": f"sqlite:///{folder / 'chat.db'}",
        "SECRET_KEY": secrets.token_hex(32),
        "SESSION_FILE_DIR": str(folder / "sessions"),
        "UPLOAD_FOLDER": str(folder / "uploads"),
        "PYTHONUNBUFFERED": "1",
        # scrypt is slow on purpose; registering thousands of users would dominate the run.
        "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
        **limit_overrides(app_dir),
    }


def start_chat(folder: Path, app_dir: Path = ROOT, **settings: str) -> Server:
    """Start ``python app.py`` from ``app_dir`` with all its data under ``folder``
    (or on the database of a ``DATABASE_URL`` setting)."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        **chat_settings(folder, app_dir),
        **settings,
    }
    server = _start("chat", [sys.executable, "app.py"], app_dir, env, folder, port, "/login")
    _set_database(server, env["DATABASE_URL"])
    return server


def _set_database(server: Server, database_url: str) -> None:
    if database_url.startswith("sqlite:///"):
        server.database_path = Path(database_url.removeprefix("sqlite:///"))
    else:
        server.database_url = database_url


# -- scaled out: PostgreSQL, Redis, nginx and several workers ------------------------------


def cluster_problem() -> str | None:
    """None when nginx, Redis and PostgreSQL are all here; otherwise what is missing."""
    sys.path.insert(0, str(ROOT))
    from deploy.cluster import find_nginx, redis_problem

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
    log_path = folder / f"cluster-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, str(launcher)],
            cwd=app_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=set_niceness,  # the workers and nginx inherit it
        )
    server = Server(f"cluster of {workers}", f"http://127.0.0.1:{port}", folder, log_path, process)
    server.stop_timeout_s = CLUSTER_STOP_TIMEOUT_S
    _set_database(server, env["DATABASE_URL"])
    deadline = time.monotonic() + CLUSTER_START_TIMEOUT_S
    while not answers(server.url + "/login"):
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"the cluster did not start:\n{server.log_tail()}")
        time.sleep(0.2)
    for child in _children_of(process.pid):
        server.children[child] = _start_time(child)
        if _comm_of(child) == "nginx":
            server.nginx_pid = child
        elif _port_of(child) in range(first_worker_port, first_worker_port + workers):
            server.workers[child] = _port_of(child)
    if len(server.workers) != workers or server.nginx_pid is None:
        server.stop()
        raise RuntimeError(f"the cluster's processes were not all found:\n{server.log_tail()}")
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
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    command = [
        sys.executable,
        str(Path(__file__).with_name("baseline_relay.py")),
        "--port",
        str(port),
        "--max-connections",
        str(max_connections),
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    probe = "/socket.io/?EIO=4&transport=polling"
    return _start("relay", command, ROOT, env, folder, port, probe)
