"""HTTPS on the LAN on a real ``python app.py``: the certificate it presents verifies
against the ``/ca.crt`` it serves, for 127.0.0.1 and the LAN address of its start screen;
Socket.IO works over it on both transports; the CA survives a restart; a certificate of
one's own is used as given; the mDNS announcement (on loopback only) comes and goes with
the chat, and a failing one leaves it running."""

from __future__ import annotations

import re
import socket
import ssl
import time
import uuid
import warnings
from pathlib import Path

import pytest
import requests
import socketio
from cryptography import x509

import local_tls
from bench import servers
from bench.clients import csrf_token
from serving import lan_address
from tests.live_server import LiveServer, wait_for
from tests.test_lan_announce import LOOPBACK, Seen

pytestmark = pytest.mark.slow

START_TIMEOUT_S = 30.0


def launch_https(folder: Path, **settings: str) -> LiveServer:
    """``python app.py`` with HTTPS on, its data and certificates under ``folder``, listening
    on every interface (so the start screen prints the LAN address), mDNS off unless asked."""
    server = servers.launch_chat(
        folder,
        {
            **servers.data_settings(folder),
            "HOST": "0.0.0.0",
            "HTTPS": "1",
            "TLS_FOLDER": str(folder / "tls"),
            "MDNS": "0",
            **settings,
        },
    )
    server.url = server.url.replace("http://", "https://")
    return server


def wait_up(server: LiveServer, trust: Path | bool) -> None:
    """Wait until the server answers GET /login over HTTPS, trusting ``trust`` (a CA file,
    made by the server as it starts), or fail with its output."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if server.process.poll() is not None:
            pytest.fail(f"The server exited before answering\n{server.describe()}")
        if not isinstance(trust, Path) or trust.exists():
            try:
                if requests.get(server.url + "/login", verify=str(trust), timeout=2).ok:
                    return
            except requests.RequestException:
                pass
        if time.monotonic() > deadline:
            server.stop()
            pytest.fail(f"No answer over HTTPS within {START_TIMEOUT_S:.0f} s\n{server.describe()}")
        time.sleep(0.1)


def start_https(folder: Path, **settings: str) -> LiveServer:
    server = launch_https(folder, **settings)
    wait_up(server, folder / "tls" / "ca.crt")
    return server


def presented_certificate(host: str, port: int, ca_file: Path, name: str) -> x509.Certificate:
    """The certificate the server presents at ``host:port``, verified against ``ca_file``
    alone (no system roots) for ``name``; an invalid one raises ``ssl.SSLCertVerificationError``."""
    context = ssl.create_default_context(cafile=str(ca_file))
    with (
        socket.create_connection((host, port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=name) as tls,
    ):
        return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))


@pytest.fixture(scope="module")
def https_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("https")
    server = start_https(folder)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def served_ca(https_server, tmp_path_factory) -> Path:
    """``/ca.crt`` fetched as a phone does on its first visit (nothing trusted yet), saved."""
    with warnings.catch_warnings():  # the warning a phone shows, which this test expects
        warnings.simplefilter("ignore")
        response = requests.get(https_server.url + "/ca.crt", verify=False, timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/x-x509-ca-cert"
    path = tmp_path_factory.mktemp("phone") / "chat-ca.crt"
    path.write_bytes(response.content)
    return path


def printed_lan_address(server: LiveServer) -> str | None:
    found = re.search(
        rf"On your network:\s+https://(\S+):{server.port}/", server.log_path.read_text()
    )
    return found.group(1) if found else None


def test_the_certificate_verifies_against_the_served_ca_for_loopback_and_the_lan(
    https_server, served_ca
):
    assert b"PRIVATE KEY" not in served_ca.read_bytes()
    assert served_ca.read_bytes().count(b"BEGIN CERTIFICATE") == 1
    response = requests.get(https_server.url + "/login", verify=str(served_ca), timeout=10)
    assert response.status_code == 200

    port = https_server.port
    presented = presented_certificate("127.0.0.1", port, served_ca, "127.0.0.1")
    presented_certificate("127.0.0.1", port, served_ca, "localhost")
    names = local_tls.certificate_names(presented)
    assert {"127.0.0.1", "::1"} <= set(names.ips)
    assert "localhost" in names.dns
    lan = printed_lan_address(https_server)
    assert lan == lan_address(), https_server.log_tail()
    if lan is not None:
        # Reached at the LAN address, verified for it, as a phone on the LAN would.
        assert (
            local_tls.certificate_names(presented_certificate(lan, port, served_ca, lan)).ips
            == names.ips
        )
        assert lan in names.ips
    # A name it was not made for fails verification: the check above is a real one.
    with pytest.raises(ssl.SSLCertVerificationError):
        presented_certificate("127.0.0.1", port, served_ca, "example.org")


def test_the_start_screen_says_where_to_get_the_ca(https_server, served_ca):
    # A client refusing the certificate, as a phone does before it trusts the CA.
    with pytest.raises(ssl.SSLCertVerificationError):
        presented_certificate("127.0.0.1", https_server.port, served_ca, "example.org")
    assert requests.get(https_server.url + "/login", verify=str(served_ca), timeout=10).ok
    log = https_server.log_path.read_text()
    fingerprint = local_tls.get_fingerprint(served_ca.read_bytes())
    assert fingerprint in log.replace("\n", "")
    assert re.search(rf"https://\S+:{https_server.port}/ca\b", log)
    assert "/ca.crt" in log
    assert "On this computer:  https://localhost:" in log
    if printed_lan_address(https_server):
        # Two QR codes: the chat's address, then the install steps.
        assert log.count("A phone's camera opens the install steps") == 1
        assert log.count("Point a phone's camera at this code") == 1
    # The refused handshake closed its connection and left no traceback.
    assert "Traceback" not in log


def test_cookies_are_secure_and_hsts_is_sent_over_https(https_server, served_ca):
    response = requests.get(https_server.url + "/login", verify=str(served_ca), timeout=10)
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert "; Secure" in response.headers["Set-Cookie"]
    page = requests.get(https_server.url + "/ca", verify=str(served_ca), timeout=10)
    assert page.status_code == 200
    assert local_tls.get_fingerprint(served_ca.read_bytes()) in page.text


def logged_in_session(server: LiveServer, ca_file: Path) -> requests.Session:
    """A new person registered through the real form over HTTPS."""
    http = requests.Session()
    http.trust_env = False
    http.verify = str(ca_file)
    name = f"phone-{uuid.uuid4().hex[:6]}"
    token = csrf_token(http.get(server.url + "/register").text)
    form = {"username": name, "password": "password123", "confirmation": "password123"}
    # Over HTTPS Flask-WTF also wants the Referer of a same-origin page, as browsers send.
    response = http.post(
        server.url + "/register",
        data={**form, "csrf_token": token},
        headers={"Referer": server.url + "/register"},
        allow_redirects=False,
    )
    assert response.status_code == 303, response.text[:300]
    assert "; Secure" in response.headers["Set-Cookie"]
    return http


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_socketio_works_over_https_on_both_transports(https_server, served_ca, transport):
    http = logged_in_session(https_server, served_ca)
    client = socketio.Client(reconnection=False, http_session=http)
    client.connect(https_server.url, transports=[transport], wait_timeout=10)
    try:
        assert client.transport() == transport
        chats = client.call("list_chats", {}, timeout=10)
        assert chats["ok"], chats
        general = next(c for c in chats["chats"] if c["name"] == "General Talk")
        sent = client.call(
            "message_sent",
            {"chat_id": general["id"], "body": "over TLS", "client_id": uuid.uuid4().hex},
            timeout=10,
        )
        assert sent["ok"] and sent["message"]["body"] == "over TLS", sent
    finally:
        client.disconnect()


def test_the_ca_is_kept_across_a_restart(tmp_path):
    server = start_https(tmp_path)
    tls = tmp_path / "tls"
    ca_before = (tls / "ca.crt").read_bytes(), (tls / "ca.key").read_bytes()
    server_before = (tls / "server.crt").read_bytes()
    server.stop()
    again = start_https(tmp_path)
    try:
        assert ((tls / "ca.crt").read_bytes(), (tls / "ca.key").read_bytes()) == ca_before
        # Same addresses: the same server certificate, still verifying against the old CA.
        assert (tls / "server.crt").read_bytes() == server_before
        presented = presented_certificate("127.0.0.1", again.port, tls / "ca.crt", "127.0.0.1")
        assert presented == x509.load_pem_x509_certificate(server_before)
    finally:
        again.stop()


def test_a_certificate_of_ones_own_is_presented_and_no_ca_is_made(tmp_path):
    own = tmp_path / "own"
    local_tls.ensure_server_certificate(own, local_tls.get_local_names([], hostname="own"))
    folder = tmp_path / "chat"
    server = launch_https(
        folder, HTTPS="0", TLS_CERT=str(own / "server.crt"), TLS_KEY=str(own / "server.key")
    )
    try:
        wait_up(server, own / "ca.crt")
        presented = presented_certificate("127.0.0.1", server.port, own / "ca.crt", "localhost")
        assert presented == x509.load_pem_x509_certificate((own / "server.crt").read_bytes())
        assert not (folder / "tls").exists()
        missing = requests.get(server.url + "/ca.crt", verify=str(own / "ca.crt"), timeout=10)
        assert missing.status_code == 404
        assert missing.headers["Strict-Transport-Security"] == "max-age=31536000"
    finally:
        server.stop()


def test_a_wrong_certificate_of_ones_own_stops_the_start_with_a_clear_message(tmp_path):
    server = launch_https(tmp_path, HTTPS="0", TLS_CERT=str(tmp_path / "nowhere.crt"))
    assert server.process.wait(START_TIMEOUT_S) != 0
    assert "Check TLS_CERT and TLS_KEY" in server.log_tail()
    assert "nowhere.crt" in server.log_tail()


def test_the_chat_announces_itself_on_loopback_and_withdraws_when_it_stops(tmp_path):
    from zeroconf import ServiceBrowser, Zeroconf

    zeroconf = Zeroconf(interfaces=[LOOPBACK])
    seen = Seen()
    browser = ServiceBrowser(zeroconf, "_https._tcp.local.", seen)
    try:
        server = start_https(tmp_path, MDNS="1", MDNS_INTERFACES=LOOPBACK)
        try:
            name = wait_for(
                lambda: next(iter(seen.added), None), "the chat's service seen on loopback", 20
            )
            info = zeroconf.get_service_info("_https._tcp.local.", name, timeout=5000)
            assert info is not None and info.port == server.port
            local = info.server.rstrip(".")
            start_screen = server.log_path.read_text()
            assert f"or by name:        https://{local}:{server.port}/" in start_screen
        finally:
            server.stop()
        seen.wait("removed", name)
    finally:
        browser.cancel()
        zeroconf.close()


def test_an_announcement_that_fails_leaves_the_chat_serving(tmp_path):
    # No interface has this documentation address: zeroconf cannot open its socket.
    server = start_https(tmp_path, MDNS="1", MDNS_INTERFACES="203.0.113.9")
    try:
        wait_for(
            lambda: "Not announced on the LAN (mDNS)" in server.log_tail(),
            "one line saying the chat was not announced",
            20,
        )
        response = requests.get(server.url + "/login", verify=str(tmp_path / "tls" / "ca.crt"))
        assert response.status_code == 200
        assert server.process.poll() is None
    finally:
        server.stop()
