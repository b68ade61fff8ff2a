"""A Redis server of the test's own, on a free port, that a test may kill and start again
(the shared Redis of the other tests is never touched). It writes every change to its
append-only file before answering, so a restart after SIGKILL keeps sessions and counters,
as a production Redis with persistence does."""

from __future__ import annotations

import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from bench.servers import free_port
from database import Database
from tests.live_server import ROOT, LiveServer
from tests.skips import skip_or_fail

START_TIMEOUT_S = 10.0


class OwnRedis:
    """``redis-server`` on a free loopback port with its files under ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start (or start again, on the same port and files) and wait until it answers."""
        binary = shutil.which("redis-server")
        if binary is None:
            skip_or_fail("redis-server is not installed (Debian: apt-get install redis-server)")
        self.folder.mkdir(parents=True, exist_ok=True)
        log = (self.folder / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.folder),
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ],  # fmt: skip
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(
                    f"redis-server did not start:\n{(self.folder / 'redis.log').read_text()}"
                )
            time.sleep(0.05)

    def answers(self) -> bool:
        import redis

        client = redis.Redis(port=self.port, socket_connect_timeout=1, retry=None)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL, as a crash or an out-of-memory kill would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@contextmanager
def own_redis(folder: Path) -> Iterator[OwnRedis]:
    """A running OwnRedis, killed at the end whatever happens."""
    server = OwnRedis(folder)
    server.start()
    try:
        yield server
    finally:
        server.kill()


@contextmanager
def workers_on_own_redis(folder: Path) -> Iterator[tuple[OwnRedis, list[LiveServer]]]:
    """Two workers (``python app.py``) sharing a SQLite file and an OwnRedis; all stopped
    at the end whatever happens."""
    from tests.test_cluster import start_workers

    with own_redis(folder / "redis") as queue, ExitStack() as stack:
        database_url = f"sqlite:///{folder / 'chat.db'}"
        database = Database(database_url, str(ROOT), pool_size=1)
        database.init_schema()  # once, before two workers race to create it
        database.close()
        settings = {
            "DATABASE_URL": database_url,
            "REDIS_URL": queue.url,
            "REDIS_PREFIX": "outage",
            "SECRET_KEY": secrets.token_hex(32),
            "SEND_RATE_LIMIT": "100000 per minute",
            "REGISTER_RATE_LIMIT": "1000 per hour",
            "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
            "UPLOAD_FOLDER": str(folder / "uploads"),
            "SESSION_FILE_DIR": str(folder / "sessions"),
        }
        workers = start_workers(folder, settings)
        for worker in workers:
            stack.callback(worker.stop)
        yield queue, workers
