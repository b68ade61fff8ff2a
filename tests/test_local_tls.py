"""HTTPS on the LAN, in-process: the CA made once and kept, the server certificate made for
the machine's names and made again when they change or near its end, a certificate of
one's own, and what serving HTTPS changes in the app (the CA pages, Secure cookies, HSTS)."""

from __future__ import annotations

import datetime
import re
import stat
from pathlib import Path

import pytest
from cryptography import x509

import local_tls
from app import create_app
from tests.conftest import PASSWORD, make_config, register

NOW = datetime.datetime(2026, 11, 28, 9, 0, tzinfo=datetime.UTC)
NAMES = local_tls.get_local_names(["192.168.1.20", "fe80::1%eth0"], hostname="studio")


def read_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_the_server_certificate_names_localhost_loopback_the_lan_and_the_local_name():
    assert NAMES.dns == ("localhost", "studio.local")
    # Link-local addresses are left out: they are not reachable as typed in a browser.
    assert NAMES.ips == ("127.0.0.1", "192.168.1.20", "::1")


def test_the_ca_is_made_once_and_the_certificate_verifies_against_it(tmp_path):
    folder = tmp_path / "tls"
    assert local_tls.ensure_server_certificate(folder, NAMES, NOW) is True
    ca, server = read_cert(folder / "ca.crt"), read_cert(folder / "server.crt")
    server.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert local_tls.certificate_names(server) == NAMES
    # Files owner-only, in an owner-only folder: the CA's key signs for any name.
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for name in ["ca.crt", "ca.key", "server.crt", "server.key"]:
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600, name

    ca_bytes = (folder / "ca.crt").read_bytes(), (folder / "ca.key").read_bytes()
    server_bytes = (folder / "server.crt").read_bytes()
    # Same names, a day later: nothing is made again.
    assert local_tls.ensure_server_certificate(folder, NAMES, NOW.replace(day=29)) is False
    assert (folder / "server.crt").read_bytes() == server_bytes
    assert ((folder / "ca.crt").read_bytes(), (folder / "ca.key").read_bytes()) == ca_bytes


def test_a_new_address_makes_a_new_server_certificate_signed_by_the_same_ca(tmp_path):
    folder = tmp_path / "tls"
    local_tls.ensure_server_certificate(folder, NAMES, NOW)
    ca_bytes = (folder / "ca.crt").read_bytes()
    moved = local_tls.get_local_names(["10.0.0.7"], hostname="studio")
    assert local_tls.ensure_server_certificate(folder, moved, NOW) is True
    server = read_cert(folder / "server.crt")
    assert local_tls.certificate_names(server).ips == ("10.0.0.7", "127.0.0.1", "::1")
    assert (folder / "ca.crt").read_bytes() == ca_bytes
    server.verify_directly_issued_by(read_cert(folder / "ca.crt"))
    # A new host name too.
    renamed = local_tls.get_local_names(["10.0.0.7"], hostname="office")
    assert local_tls.ensure_server_certificate(folder, renamed, NOW) is True
    assert "office.local" in local_tls.certificate_names(read_cert(folder / "server.crt")).dns


def test_the_server_certificate_is_renewed_a_month_before_it_ends(tmp_path):
    folder = tmp_path / "tls"
    local_tls.ensure_server_certificate(folder, NAMES, NOW)
    first = read_cert(folder / "server.crt")
    assert first.not_valid_after_utc - NOW == datetime.timedelta(days=local_tls.SERVER_DAYS)
    almost = first.not_valid_after_utc - datetime.timedelta(days=31)
    assert local_tls.ensure_server_certificate(folder, NAMES, almost) is False
    late = first.not_valid_after_utc - datetime.timedelta(days=29)
    assert local_tls.ensure_server_certificate(folder, NAMES, late) is True
    assert read_cert(folder / "server.crt").not_valid_after_utc > first.not_valid_after_utc


def test_a_server_certificate_of_another_ca_is_replaced(tmp_path):
    folder, other = tmp_path / "tls", tmp_path / "other"
    local_tls.ensure_server_certificate(folder, NAMES, NOW)
    local_tls.ensure_server_certificate(other, NAMES, NOW)
    (folder / "server.crt").write_bytes((other / "server.crt").read_bytes())
    (folder / "server.key").write_bytes((other / "server.key").read_bytes())
    assert local_tls.ensure_server_certificate(folder, NAMES, NOW) is True
    read_cert(folder / "server.crt").verify_directly_issued_by(read_cert(folder / "ca.crt"))


def test_a_damaged_or_mismatched_server_key_is_replaced(tmp_path):
    folder = tmp_path / "tls"
    local_tls.ensure_server_certificate(folder, NAMES, NOW)
    (folder / "server.key").write_text("not a key")
    assert local_tls.ensure_server_certificate(folder, NAMES, NOW) is True
    # The CA's key beside the server's certificate: not its key, so a new pair.
    (folder / "server.key").write_bytes((folder / "ca.key").read_bytes())
    assert local_tls.ensure_server_certificate(folder, NAMES, NOW) is True
    files = local_tls.TlsFiles(folder / "server.crt", folder / "server.key", folder / "ca.crt")
    local_tls.server_context(files)  # the pair loads


def test_a_damaged_ca_stops_the_start_and_is_never_replaced_silently(tmp_path):
    folder = tmp_path / "tls"
    local_tls.ensure_server_certificate(folder, NAMES, NOW)
    (folder / "ca.key").write_text("damaged")
    with pytest.raises(local_tls.TlsSetupError, match="delete the folder to make a new CA"):
        local_tls.ensure_server_certificate(folder, NAMES, NOW)
    assert (folder / "ca.key").read_text() == "damaged"
    other = tmp_path / "other"
    local_tls.ensure_server_certificate(other, NAMES, NOW)
    (folder / "ca.key").write_bytes((other / "ca.key").read_bytes())
    with pytest.raises(local_tls.TlsSetupError, match="is not the key of"):
        local_tls.ensure_server_certificate(folder, NAMES, NOW)


def test_a_certificate_of_ones_own_is_used_and_no_ca_is_made(tmp_path):
    own = tmp_path / "own"
    local_tls.ensure_server_certificate(own, NAMES, NOW)
    config = {
        "HTTPS": False,
        "TLS_CERT": str(own / "server.crt"),
        "TLS_KEY": str(own / "server.key"),
        "TLS_FOLDER": str(tmp_path / "made"),
    }
    assert local_tls.serves_tls(config)
    files = local_tls.prepare(config, tmp_path)
    assert (files.cert, files.key, files.ca_cert) == (own / "server.crt", own / "server.key", None)
    assert not (tmp_path / "made").exists()
    assert local_tls.made_ca_certificate({**config, "HTTPS": True}, tmp_path) is None


def test_a_missing_or_wrong_certificate_of_ones_own_stops_the_start_saying_which(tmp_path):
    own = tmp_path / "own"
    local_tls.ensure_server_certificate(own, NAMES, NOW)
    missing = {"TLS_CERT": str(tmp_path / "nowhere.crt"), "TLS_KEY": "", "TLS_FOLDER": "x"}
    with pytest.raises(local_tls.TlsSetupError, match="nowhere.crt"):
        local_tls.prepare(missing, tmp_path)
    # The CA's key does not belong to the server's certificate.
    wrong = {"TLS_CERT": str(own / "server.crt"), "TLS_KEY": str(own / "ca.key"), "TLS_FOLDER": "x"}
    with pytest.raises(local_tls.TlsSetupError, match="TLS_CERT and TLS_KEY"):
        local_tls.prepare(wrong, tmp_path)


def test_https_uses_the_machines_own_addresses_when_none_are_given(tmp_path):
    from serving import lan_address

    config = {"HTTPS": True, "TLS_CERT": "", "TLS_KEY": "", "TLS_FOLDER": "tls"}
    files = local_tls.prepare(config, tmp_path)
    names = local_tls.certificate_names(read_cert(files.cert))
    assert {"127.0.0.1", "::1"} <= set(names.ips)
    assert "localhost" in names.dns
    assert any(name.endswith(".local") for name in names.dns)
    lan = lan_address()
    if lan is not None:  # the address the start screen prints
        assert lan in names.ips


# -- the web app -------------------------------------------------------------------------


@pytest.fixture
def https_app(tmp_path):
    """An app configured to serve HTTPS itself, with its CA made as ``python app.py`` would."""
    folder = tmp_path / "tls"
    local_tls.ensure_server_certificate(folder, NAMES, NOW)
    return create_app(make_config(tmp_path, HTTPS=True, TLS_FOLDER=str(folder)))


def test_ca_crt_serves_the_cas_certificate_and_never_a_key(https_app, tmp_path):
    folder = tmp_path / "tls"
    # Even should the file hold a key beside the certificate, only the certificate leaves.
    (folder / "ca.crt").write_bytes(
        (folder / "ca.crt").read_bytes() + (folder / "ca.key").read_bytes()
    )
    response = https_app.test_client().get("/ca.crt", base_url="https://localhost")
    assert response.status_code == 200
    assert response.mimetype == "application/x-x509-ca-cert"
    body = response.get_data()
    assert b"PRIVATE KEY" not in body
    assert body.count(b"BEGIN CERTIFICATE") == 1
    assert x509.load_pem_x509_certificate(body) == read_cert(folder / "ca.crt")


def test_the_install_page_gives_the_fingerprint_and_steps_for_every_system(https_app, tmp_path):
    response = https_app.test_client().get("/ca", base_url="https://localhost")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    fingerprint = local_tls.get_fingerprint((tmp_path / "tls" / "ca.crt").read_bytes())
    assert re.fullmatch(r"([0-9A-F]{2}:){31}[0-9A-F]{2}", fingerprint)
    assert fingerprint in page
    for system in ["Android", "iPhone", "Windows", "macOS", "Linux"]:
        assert f"<h2>{system}" in page, system
    assert 'href="/ca.crt"' in page
    # The CSP forbids inline script and style: the page has none.
    scripts = re.findall(r"<script\b[^>]*>", page)
    assert all(" src=" in tag for tag in scripts), scripts
    assert not re.search(r"\sstyle\s*=|\son[a-z]+\s*=", page)


def test_without_a_ca_of_its_own_the_chat_has_no_ca_pages(tmp_path):
    plain = create_app(make_config(tmp_path / "plain"))
    assert plain.test_client().get("/ca.crt").status_code == 404
    assert plain.test_client().get("/ca").status_code == 404
    own = tmp_path / "own"
    local_tls.ensure_server_certificate(own, NAMES, NOW)
    with_own = create_app(
        make_config(
            tmp_path / "app", TLS_CERT=str(own / "server.crt"), TLS_KEY=str(own / "server.key")
        )
    )
    assert with_own.test_client().get("/ca.crt", base_url="https://localhost").status_code == 404


def test_serving_https_makes_every_cookie_secure_and_sends_hsts(https_app):
    client = https_app.test_client()
    register(client, "alice")
    client.post("/logout", base_url="https://localhost")
    response = client.post(
        "/login", data={"username": "alice", "password": PASSWORD}, base_url="https://localhost"
    )
    cookies = response.headers.getlist("Set-Cookie")
    assert {cookie.split("=", 1)[0] for cookie in cookies} >= {"session", "login_device"}
    for cookie in cookies:
        assert "; Secure" in cookie, cookie
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert client.get("/login").headers["Strict-Transport-Security"] == "max-age=31536000"


def test_a_plain_http_chat_sends_neither_secure_cookies_nor_hsts(tmp_path):
    client = create_app(make_config(tmp_path)).test_client()
    response = client.get("/login")
    assert "Strict-Transport-Security" not in response.headers
    assert "Secure" not in response.headers["Set-Cookie"]


class LoopEnded(Exception):
    """Ends ``keep_fresh``'s endless loop after the rounds a test wants."""


def test_a_running_chat_presents_a_new_certificate_once_its_address_changes(tmp_path, monkeypatch):
    folder = tmp_path / "tls"
    local_tls.ensure_server_certificate(folder, NAMES, NOW)
    files = local_tls.TlsFiles(folder / "server.crt", folder / "server.key", folder / "ca.crt")
    addresses = [["192.168.1.20"], ["10.0.0.7"]]  # the first round, then after a move
    names_of = local_tls.get_local_names
    monkeypatch.setattr(
        local_tls, "get_local_names", lambda: names_of(addresses.pop(0), hostname="studio")
    )
    loaded: list[bytes] = []

    class Context:
        def load_cert_chain(self, cert: Path, key: Path) -> None:
            loaded.append(Path(cert).read_bytes())

    rounds = iter(range(2))

    def sleep(_seconds: float) -> None:
        if next(rounds, None) is None:
            raise LoopEnded

    with pytest.raises(LoopEnded):
        local_tls.keep_fresh(Context(), folder, files, 300, sleep)
    # Nothing changed in the first round; the move made one certificate, loaded at once.
    assert len(loaded) == 1
    presented = x509.load_pem_x509_certificate(loaded[0])
    assert local_tls.certificate_names(presented).ips == ("10.0.0.7", "127.0.0.1", "::1")
