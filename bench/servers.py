"""Start the servers under test on a free loopback port, and read their CPU and memory.

The chat runs as ``python app.py`` (eventlet, as in production) with its database,
sessions and uploads in a folder of the benchmark's; the relay runs as
``python bench/baseline_relay.py``. Both are stopped with SIGTERM, then SIGKILL.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

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


@dataclass
class Server:
    """A running server under test: where to reach it and its process."""

    name: str
    url: str
    folder: Path
    log_path: Path
    process: subprocess.Popen[bytes]
    database_path: Path | None = None

    @property
    def pid(self) -> int:
        """The server's process id."""
        return self.process.pid

    def rss_kib(self) -> int:
        """The server's resident memory in KiB."""
        return rss_kib(self.pid)

    def log_tail(self, lines: int = 30) -> str:
        """The last lines the server wrote."""
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited after a few seconds."""
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


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


def _answers(url: str) -> bool:
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
    while not _answers(server.url + probe_path):
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"{name} did not start:\n{server.log_tail()}")
        time.sleep(0.1)
    return server


def start_chat(folder: Path, app_dir: Path = ROOT, **settings: str) -> Server:
    """Start ``python app.py`` from ``app_dir`` with all its data under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    database_path = folder / "chat.db"
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "DATABASE_URL": f"sqlite:///{database_path}",
        "SECRET_KEY": secrets.token_hex(32),
        "SESSION_FILE_DIR": str(folder / "sessions"),
        "UPLOAD_FOLDER": str(folder / "uploads"),
        "PYTHONUNBUFFERED": "1",
        # scrypt is slow on purpose; registering thousands of users would dominate the run.
        "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
        **limit_overrides(app_dir),
        **settings,
    }
    server = _start("chat", [sys.executable, "app.py"], app_dir, env, folder, port, "/login")
    server.database_path = database_path
    return server


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
