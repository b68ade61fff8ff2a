"""HTTPS behind nginx, as docs/security.md shows it, run for real: every HTTPS answer tells
the browser to use HTTPS only (HSTS), error pages too, and plain HTTP is sent to HTTPS.
deploy/nginx.conf's TLS example carries the same header."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import urllib3

from bench.servers import free_port
from deploy.cluster import find_nginx, nginx_command, render_main_config
from tests.live_server import LiveServer, start_server
from tests.skips import skip_or_fail

ROOT = Path(__file__).resolve().parents[1]
HSTS_LINE = 'add_header Strict-Transport-Security "max-age=31536000" always;'
START_TIMEOUT_S = 20.0


def documented_tls_config() -> str:
    """The nginx example of docs/security.md, as a reader would copy it."""
    text = (ROOT / "docs" / "security.md").read_text()
    return re.search(r"```nginx\n(.*?)```", text, re.DOTALL).group(1)


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "chat.pem", folder / "chat.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-subj", "/CN=chat.example.org", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


@pytest.fixture
def tls_front(tmp_path) -> Iterator[tuple[str, str]]:
    """nginx with the documented configuration in front of a real chat: (https, http) URLs."""
    nginx = find_nginx()
    if nginx is None or shutil.which("openssl") is None:
        skip_or_fail("nginx and openssl are needed to run the documented TLS configuration")
    chat: LiveServer = start_server(tmp_path / "chat")
    run_dir = tmp_path / "nginx"
    (run_dir / "temp").mkdir(parents=True)
    cert, key = self_signed_certificate(run_dir)
    tls_port, http_port = free_port(), free_port()
    site = documented_tls_config()
    for old, new in [
        ("listen 443 ssl;", f"listen 127.0.0.1:{tls_port} ssl;"),
        ("listen 80;", f"listen 127.0.0.1:{http_port};"),
        ("/etc/ssl/certs/chat.pem", str(cert)),
        ("/etc/ssl/private/chat.key", str(key)),
        ("http://127.0.0.1:5000", chat.url),
    ]:
        assert old in site, f"docs/security.md's example no longer has {old!r}"
        site = site.replace(old, new)
    (run_dir / "chat.conf").write_text(site)
    config = run_dir / "nginx.conf"
    config.write_text(render_main_config(run_dir / "chat.conf", run_dir))
    process = subprocess.Popen(
        nginx_command(nginx, config),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    https_url, http_url = f"https://127.0.0.1:{tls_port}", f"http://127.0.0.1:{http_port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                get(f"{https_url}/login")
                break
            except requests.ConnectionError:
                error_log = run_dir / "nginx-error.log"
                if process.poll() is not None or time.monotonic() > deadline:
                    log = error_log.read_text() if error_log.exists() else "(no log)"
                    pytest.fail(f"nginx did not answer on {https_url}:\n{log}", pytrace=False)
                time.sleep(0.1)
        yield https_url, http_url
    finally:
        process.terminate()
        process.wait(10)
        chat.stop()


def get(url: str) -> requests.Response:
    """A request straight to ``url`` (no proxy), trusting the test's own certificate."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
        return requests.get(
            url, verify=False, allow_redirects=False, timeout=10, proxies={"http": "", "https": ""}
        )


def test_https_answers_carry_hsts_and_plain_http_is_sent_to_https(tls_front):
    https_url, http_url = tls_front
    page = get(f"{https_url}/login")
    assert page.status_code == 200
    assert page.headers["Strict-Transport-Security"] == "max-age=31536000"
    missing = get(f"{https_url}/no-such-page")
    assert missing.status_code == 404
    assert missing.headers["Strict-Transport-Security"] == "max-age=31536000"
    plain = get(f"{http_url}/login")
    assert plain.status_code == 301
    assert plain.headers["Location"] == "https://127.0.0.1/login"
    # Over plain HTTP a browser ignores the header; the example does not send it there.
    assert "Strict-Transport-Security" not in plain.headers


def test_the_tls_example_of_the_nginx_template_sends_hsts_from_its_https_block():
    template = (ROOT / "deploy" / "nginx.conf").read_text()
    example = "\n".join(
        line.removeprefix("#").strip() for line in template.splitlines() if line.startswith("#")
    )
    https_block = example[example.index("listen 443 ssl;") : example.index("listen 80;")]
    assert HSTS_LINE in https_block
