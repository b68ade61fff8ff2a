"""Several chat workers behind nginx on one machine: what ``make cluster`` runs.

Starts N workers (``python app.py`` on 127.0.0.1:5001, 5002, ...; one per core by default)
that share Redis (``REDIS_URL``: Socket.IO's message queue, sessions, limit counters,
presence), one database (``DATABASE_URL``) and one ``SECRET_KEY``; fills the nginx template
``deploy/nginx.conf`` into ``instance/cluster/`` and runs nginx in the foreground on the
public port (``PORT``, 5000 by default); starts a worker again when it dies; stops
everything on Ctrl+C or SIGTERM. docs/deploy.md explains the pieces, and the same set-up
on several machines.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "deploy" / "nginx.conf"
DEFAULT_RUN_DIR = ROOT / "instance" / "cluster"
DEBIAN_NGINX = "/usr/sbin/nginx"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_PUBLIC_PORT = 5000
DEFAULT_FIRST_WORKER_PORT = 5001
DEFAULT_MAX_UPLOAD_MB = 10
NGINX_OPEN_FILES = 65536
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 5.0
RESTART_DELAY_S = 1.0
# A worker that dies this many times in a row within QUICK_DEATH_S of starting is broken,
# not unlucky: the cluster stops instead of starting it forever.
MAX_QUICK_DEATHS = 3
QUICK_DEATH_S = 10.0
_PLACEHOLDER = re.compile(r"\{\{ (\w+) \}\}")
# What may stand in an nginx directive's value here: no spaces, quotes, braces or semicolons.
_SAFE_VALUE = re.compile(r"[\w.:\[\]-]+")

log = logging.getLogger("cluster")


class ClusterError(Exception):
    """Something the cluster needs is missing or did not start; the message says what."""


# -- nginx's configuration -----------------------------------------------------------------


def listen_address(host: str, port: int) -> str:
    """nginx's ``listen`` value for the chat's HOST and PORT settings."""
    if host in {"", "0.0.0.0", "*"}:
        return str(port)
    if ":" in host:
        return f"[{host.strip('[]')}]:{port}"
    return f"{host}:{port}"


def render_site_config(
    upstreams: Sequence[str],
    listen: str,
    server_name: str = "_",
    max_upload_mb: int = DEFAULT_MAX_UPLOAD_MB,
) -> str:
    """``deploy/nginx.conf`` with its placeholders filled: the block for nginx's ``http``."""
    if not upstreams:
        raise ClusterError("nginx needs at least one worker to send requests to.")
    for value in [*upstreams, server_name, *listen.split()]:
        if not _SAFE_VALUE.fullmatch(value):
            raise ClusterError(f"{value!r} cannot go into nginx's configuration.")
    values = {
        "upstream_servers": "\n".join(f"    server {upstream};" for upstream in upstreams),
        "listen": listen,
        "server_name": server_name,
        # The upload itself plus the form's other fields (app.UPLOAD_FORM_OVERHEAD).
        "client_max_body_size": f"{max_upload_mb + 1}m",
    }
    lines = TEMPLATE.read_text().splitlines()
    # The template's opening comment explains the placeholders; filled, it would mislead.
    while lines and (lines[0].startswith("#") or not lines[0].strip()):
        lines.pop(0)
    header = "# Filled from deploy/nginx.conf by deploy/cluster.py; edit the template, not this."
    body = _PLACEHOLDER.sub(lambda found: values[found.group(1)], "\n".join(lines))
    return f"{header}\n\n{body}\n"


def render_main_config(site_config: Path, run_dir: Path) -> str:
    """A whole nginx.conf for nginx run by the cluster: every file it writes under
    ``run_dir``, the filled template included in its ``http`` block."""

    def path(name: str) -> str:
        return '"' + str(run_dir / name) + '"'

    # nginx may not raise its open-files limit past the hard limit it inherits.
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    open_files = NGINX_OPEN_FILES if hard == resource.RLIM_INFINITY else min(NGINX_OPEN_FILES, hard)
    # As root, nginx's own workers would switch to an unprivileged user that cannot reach
    # the temp folders under the run folder; they run as whoever started the cluster.
    user = "user root;\n" if os.geteuid() == 0 else ""
    return f"""# Written by deploy/cluster.py at each start.
{user}worker_processes auto;
worker_rlimit_nofile {open_files};
pid {path("nginx.pid")};
error_log {path("nginx-error.log")} warn;

events {{
    # Each client holds two: one from the browser, one to its worker.
    worker_connections {open_files};
}}

http {{
    # upstream= names the worker that answered: which one a client is pinned to.
    log_format chat '$remote_addr [$time_local] "$request" $status $body_bytes_sent '
                    'upstream=$upstream_addr time=$request_time';
    access_log {path("nginx-access.log")} chat;
    client_body_temp_path {path("temp/body")};
    proxy_temp_path {path("temp/proxy")};
    fastcgi_temp_path {path("temp/fastcgi")};
    uwsgi_temp_path {path("temp/uwsgi")};
    scgi_temp_path {path("temp/scgi")};

    include {'"' + str(site_config) + '"'};
}}
"""


def write_nginx_config(
    run_dir: Path,
    upstreams: Sequence[str],
    listen: str,
    server_name: str = "_",
    max_upload_mb: int = DEFAULT_MAX_UPLOAD_MB,
) -> Path:
    """Write ``chat.conf`` (the filled template) and ``nginx.conf`` (which includes it)
    into ``run_dir``; return the path of ``nginx.conf``."""
    run_dir = run_dir.resolve()
    (run_dir / "temp").mkdir(parents=True, exist_ok=True)
    site = run_dir / "chat.conf"
    site.write_text(render_site_config(upstreams, listen, server_name, max_upload_mb))
    main = run_dir / "nginx.conf"
    main.write_text(render_main_config(site, run_dir))
    return main


def find_nginx() -> str | None:
    """The nginx program: ``NGINX`` if set, else the one on PATH, else Debian's."""
    named = os.environ.get("NGINX")
    if named:
        return named if os.access(named, os.X_OK) else None
    return shutil.which("nginx") or (DEBIAN_NGINX if os.access(DEBIAN_NGINX, os.X_OK) else None)


def nginx_command(nginx: str, config: Path) -> list[str]:
    """nginx in the foreground with its own configuration, error log and prefix."""
    run_dir = config.parent
    return [
        nginx,
        "-p",
        str(run_dir),
        "-c",
        str(config),
        "-e",
        str(run_dir / "nginx-error.log"),
        "-g",
        "daemon off;",
    ]


def check_nginx_config(nginx: str, config: Path) -> None:
    """``nginx -t`` on the configuration; a ClusterError with nginx's words if it fails."""
    command = [*nginx_command(nginx, config)[:-2], "-t", "-q"]
    checked = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    if checked.returncode != 0:
        raise ClusterError(f"nginx refuses {config}:\n{checked.stderr.strip()}")


# -- Redis and the workers -----------------------------------------------------------------


def redis_problem(url: str) -> str | None:
    """None when Redis answers at ``url``; otherwise what is wrong, in a sentence."""
    try:
        import redis
    except ImportError:
        return "the Python package redis is missing: run `make install`."
    client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
    try:
        client.ping()
    except redis.RedisError as error:
        return (
            f"Redis does not answer at {url} ({error}). Start it (Debian: "
            "`apt-get install redis-server`) or set REDIS_URL."
        )
    finally:
        client.close()
    return None


def worker_command() -> list[str]:
    """One worker: the chat's own server, on eventlet."""
    return [sys.executable, str(ROOT / "app.py")]


def worker_env(port: int, settings: Mapping[str, str]) -> dict[str, str]:
    """The environment of the worker on ``port``: ours, the shared ``settings``, and its
    own loopback address (only nginx talks to it)."""
    return {
        **os.environ,
        **settings,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "PYTHONUNBUFFERED": "1",
    }


def answers(url: str, timeout: float = 2.0) -> bool:
    """True when ``url`` answers 200 (never through a proxy from the environment)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def log_tail(path: Path, lines: int = 20) -> str:
    """The last lines of a log file."""
    if not path.exists():
        return "(no output)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) or "(no output)"


@dataclass
class Child:
    """A process of the cluster (a worker or nginx), its log, and the URL that says it is up."""

    name: str
    command: list[str]
    env: dict[str, str]
    log_path: Path
    probe_url: str
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    quick_deaths: int = 0

    def start(self) -> None:
        """Start the process, its output appended to its log."""
        with self.log_path.open("ab") as output:
            self.process = subprocess.Popen(
                self.command,
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        self.started_at = time.monotonic()

    def exit_code(self) -> int | None:
        """None while it runs, else how it ended."""
        return None if self.process is None else self.process.poll()

    def wait_until_up(self, timeout: float = START_TIMEOUT_S) -> None:
        """Wait for ``probe_url`` to answer; a ClusterError with the log if it never does."""
        deadline = time.monotonic() + timeout
        while not answers(self.probe_url):
            code = self.exit_code()
            if code is not None:
                raise ClusterError(
                    f"{self.name} exited with code {code} before answering. Its last output "
                    f"({self.log_path}):\n{log_tail(self.log_path)}"
                )
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"{self.name} did not answer {self.probe_url} within {timeout:.0f} s. "
                    f"Its last output ({self.log_path}):\n{log_tail(self.log_path)}"
                )
            time.sleep(0.1)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Send ``sig``, then SIGKILL if it has not exited after a few seconds."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# -- the supervisor ------------------------------------------------------------------------


@dataclass
class Options:
    """What ``make cluster`` was asked for."""

    workers: int
    host: str
    port: int
    first_worker_port: int
    run_dir: Path
    redis_url: str
    server_name: str = "_"


class Cluster:
    """N workers and nginx, started in order, watched, and stopped together."""

    def __init__(self, options: Options):
        self.options = options
        self.workers: list[Child] = []
        self.nginx: Child | None = None
        self._stopping = False
        self._watching = False

    @property
    def worker_ports(self) -> list[int]:
        first = self.options.first_worker_port
        return list(range(first, first + self.options.workers))

    def shared_settings(self) -> dict[str, str]:
        """The settings every worker must agree on (docs/deploy.md)."""
        settings = {
            "REDIS_URL": self.options.redis_url,
            "TRUSTED_PROXIES": os.environ.get("TRUSTED_PROXIES", "1"),
        }
        if os.environ.get("SECRET_KEY"):
            settings["SECRET_KEY"] = os.environ["SECRET_KEY"]
        return settings

    def start(self) -> None:
        """Check what is needed, prepare the database, start the workers, then nginx."""
        options = self.options
        if options.port in self.worker_ports:
            raise ClusterError(f"The public port {options.port} is among the workers' ports.")
        nginx = find_nginx()
        if nginx is None:
            raise ClusterError(
                "nginx is not installed: `apt-get install nginx` (Debian's package), or set "
                "NGINX to the nginx program."
            )
        problem = redis_problem(options.redis_url)
        if problem:
            raise ClusterError(problem)
        options.run_dir.mkdir(parents=True, exist_ok=True)
        settings = self.shared_settings()
        settings["SECRET_KEY"] = self.prepare_database(settings)
        for port in self.worker_ports:
            self.workers.append(
                Child(
                    f"the worker on port {port}",
                    worker_command(),
                    worker_env(port, settings),
                    options.run_dir / f"worker-{port}.log",
                    f"http://127.0.0.1:{port}/login",
                )
            )
        for worker in self.workers:
            worker.start()
        for worker in self.workers:
            worker.wait_until_up()
        config = write_nginx_config(
            options.run_dir,
            [f"127.0.0.1:{port}" for port in self.worker_ports],
            listen_address(options.host, options.port),
            options.server_name,
            int(os.environ.get("MAX_UPLOAD_MB", DEFAULT_MAX_UPLOAD_MB)),
        )
        check_nginx_config(nginx, config)
        probe_host = "127.0.0.1" if options.host in {"", "0.0.0.0", "*", "::"} else options.host
        if ":" in probe_host:
            probe_host = f"[{probe_host}]"
        self.nginx = Child(
            "nginx",
            nginx_command(nginx, config),
            dict(os.environ),
            options.run_dir / "nginx-output.log",
            f"http://{probe_host}:{options.port}/login",
        )
        self.nginx.start()
        try:
            self.nginx.wait_until_up()
        except ClusterError as error:
            raise ClusterError(
                f"{error}\nnginx's error log:\n{log_tail(options.run_dir / 'nginx-error.log')}"
            ) from None

    def prepare_database(self, settings: Mapping[str, str]) -> str:
        """Create or upgrade the schema once, before any worker starts (two workers doing it
        at the same time would race); return the secret key the workers share."""
        init = subprocess.run(
            [sys.executable, "-m", "flask", "--app", "app", "init-db"],
            cwd=ROOT,
            env=worker_env(self.options.first_worker_port, settings),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if init.returncode != 0:
            raise ClusterError(f"The database could not be prepared:\n{init.stderr.strip()}")
        if settings.get("SECRET_KEY"):
            return settings["SECRET_KEY"]
        # Without SECRET_KEY, the app generated (or found) instance/secret_key just now.
        return (ROOT / "instance" / "secret_key").read_text().strip()

    def announce(self) -> None:
        """Print where to open the chat, and where each worker and its log are."""
        sys.path.insert(0, str(ROOT))
        from serving import print_addresses

        print_addresses(self.options.host, self.options.port)
        for worker in self.workers:
            url = f"http://127.0.0.1:{worker.env['PORT']}/"
            print(f"  Worker {url}  pid {worker.process.pid}  log {worker.log_path}")
        print(f"  nginx  pid {self.nginx.process.pid}  logs {self.options.run_dir}/nginx-*.log")
        print("  Stop with Ctrl+C.\n", flush=True)

    def request_stop(self, signum: int, _frame: FrameType | None) -> None:
        """Signal handler: leave the watch loop (or give up starting) and stop everything."""
        self._stopping = True
        if not self._watching:
            raise KeyboardInterrupt

    def watch(self) -> None:
        """Until asked to stop: start dead workers again; give up if nginx dies."""
        self._watching = True
        while not self._stopping:
            time.sleep(0.5)
            if self._stopping:
                break
            if self.nginx is not None and self.nginx.exit_code() is not None:
                error_log = log_tail(self.options.run_dir / "nginx-error.log")
                raise ClusterError(f"nginx exited with code {self.nginx.exit_code()}:\n{error_log}")
            for worker in self.workers:
                self._restart_if_dead(worker)

    def _restart_if_dead(self, worker: Child) -> None:
        code = worker.exit_code()
        if code is None:
            if time.monotonic() - worker.started_at > QUICK_DEATH_S:
                worker.quick_deaths = 0
            return
        lived = time.monotonic() - worker.started_at
        worker.quick_deaths = worker.quick_deaths + 1 if lived < QUICK_DEATH_S else 0
        if worker.quick_deaths >= MAX_QUICK_DEATHS:
            raise ClusterError(
                f"{worker.name} keeps dying (code {code}). Its last output:\n"
                f"{log_tail(worker.log_path)}"
            )
        log.warning("%s exited with code %s; starting it again", worker.name, code)
        time.sleep(RESTART_DELAY_S)
        worker.start()

    def stop(self) -> None:
        """nginx first (no new requests), then every worker."""
        self._stopping = True
        self._watching = True  # a second Ctrl+C must not interrupt the stopping
        if self.nginx is not None:
            # SIGTERM: nginx's fast shutdown. A graceful one (SIGQUIT) would wait for every
            # open WebSocket to end, which they do not on their own.
            self.nginx.stop(signal.SIGTERM)
        for worker in self.workers:
            if worker.process is not None and worker.process.poll() is None:
                worker.process.terminate()
        for worker in self.workers:
            worker.stop()


def default_worker_count() -> int:
    """One worker per core this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def parse_options(argv: Sequence[str] | None = None) -> tuple[Options, argparse.Namespace]:
    """Command line, then environment, then defaults."""
    env = os.environ
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--workers",
        type=int,
        default=int(env.get("WORKERS", 0)) or default_worker_count(),
        help="how many workers (WORKERS; default: one per core)",
    )
    parser.add_argument(
        "--host",
        default=env.get("HOST", "0.0.0.0"),
        help="address nginx listens on (HOST; default 0.0.0.0, every interface)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=int(env.get("PORT", DEFAULT_PUBLIC_PORT)),
        help="the public port (PORT; default 5000)",
    )
    parser.add_argument(
        "--first-worker-port",
        type=int,
        default=int(env.get("FIRST_WORKER_PORT", DEFAULT_FIRST_WORKER_PORT)),
        help="the first worker's port; the others follow (FIRST_WORKER_PORT; default 5001)",
    )
    parser.add_argument(
        "--run-dir",
        type=Path,
        default=Path(env.get("CLUSTER_RUN_DIR", DEFAULT_RUN_DIR)),
        help="where nginx's configuration and every log go (default instance/cluster)",
    )
    parser.add_argument("--server-name", default="_", help="nginx's server_name (default _)")
    parser.add_argument(
        "--print-nginx-config",
        action="store_true",
        help="print the filled template for --upstream workers (or this machine's) and exit",
    )
    parser.add_argument(
        "--upstream",
        action="append",
        default=[],
        metavar="HOST:PORT",
        help="a worker for --print-nginx-config; repeat for each",
    )
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    options = Options(
        workers=args.workers,
        host=args.host,
        port=args.port,
        first_worker_port=args.first_worker_port,
        run_dir=args.run_dir.resolve(),
        redis_url=env.get("REDIS_URL") or DEFAULT_REDIS_URL,
        server_name=args.server_name,
    )
    return options, args


def main(argv: Sequence[str] | None = None) -> int:
    """Start the cluster, watch it until Ctrl+C or SIGTERM, stop it; the exit code."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    options, args = parse_options(argv)
    cluster = Cluster(options)
    if args.print_nginx_config:
        upstreams = args.upstream or [f"127.0.0.1:{port}" for port in cluster.worker_ports]
        listen = listen_address(options.host, options.port)
        print(render_site_config(upstreams, listen, options.server_name), end="")
        return 0
    signal.signal(signal.SIGTERM, cluster.request_stop)
    signal.signal(signal.SIGINT, cluster.request_stop)
    try:
        cluster.start()
        cluster.announce()
        cluster.watch()
    except ClusterError as error:
        log.error("%s", error)
        return 1
    except KeyboardInterrupt:
        log.error("Stopped while starting.")
        return 1
    finally:
        cluster.stop()
    log.info("Stopped nginx and %d workers.", len(cluster.workers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
