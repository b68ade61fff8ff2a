"""HTTPS on a LAN without a domain: a certificate authority of the chat's own, made once,
and a server certificate it signs for every name a phone may use to reach this machine.

A browser gives notifications and service workers only to a secure context, and no public
authority signs a certificate for ``192.168.1.20``. So with ``HTTPS=1`` the chat makes, in
``TLS_FOLDER`` (under ``instance/``, owner-only like the rest of it), a CA (``ca.crt``,
``ca.key``) kept for good, and a server certificate (``server.crt``, ``server.key``) for
localhost, 127.0.0.1, ::1, the machine's LAN addresses and ``<hostname>.local``. A device
that installs ``ca.crt`` once trusts every server certificate made afterwards: the server
certificate is made again whenever the addresses change, or a month before it expires,
and the CA stays. ``TLS_CERT`` / ``TLS_KEY`` name a certificate of your own instead.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import ipaddress
import logging
import os
import socket
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ifaddr
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from private_files import FILE_MODE, FOLDER_MODE, make_private

log = logging.getLogger("chat")

CA_CERT = "ca.crt"
CA_KEY = "ca.key"
SERVER_CERT = "server.crt"
SERVER_KEY = "server.key"
CA_DAYS = 10 * 365
# Under 398 days: Apple's devices refuse server certificates valid for longer.
SERVER_DAYS = 397
RENEW_BEFORE = datetime.timedelta(days=30)
# A certificate is valid from a little before it is made: a phone whose clock runs behind
# would otherwise refuse it for that long.
CLOCK_SKEW = datetime.timedelta(hours=1)
# How often a running chat looks whether its addresses changed.
REFRESH_INTERVAL_S = 300.0


class TlsSetupError(SystemExit):
    """The chat was asked to serve HTTPS and cannot: the message says why and what to do."""


@dataclass(frozen=True)
class TlsFiles:
    """What the server presents: its certificate chain and key, and the CA it made (None
    when the certificate is the administrator's own)."""

    cert: Path
    key: Path | None
    ca_cert: Path | None


def serves_tls(config: Mapping[str, Any]) -> bool:
    """Whether the chat serves HTTPS itself (``HTTPS=1``, or a certificate of one's own)."""
    return bool(config.get("HTTPS") or config.get("TLS_CERT"))


def tls_folder(config: Mapping[str, Any], root: str | Path) -> Path:
    """Where the chat keeps the CA and server certificate it makes."""
    return Path(root, config["TLS_FOLDER"])


def made_ca_certificate(config: Mapping[str, Any], root: str | Path) -> Path | None:
    """The certificate of the CA the chat made, when it serves HTTPS with it; else None."""
    if not config.get("HTTPS") or config.get("TLS_CERT"):
        return None
    path = tls_folder(config, root) / CA_CERT
    return path if path.is_file() else None


def prepare(config: Mapping[str, Any], root: str | Path) -> TlsFiles:
    """The files to serve HTTPS with: the administrator's own (``TLS_CERT``/``TLS_KEY``),
    else the CA and a server certificate for today's addresses, made as needed."""
    if config.get("TLS_CERT"):
        cert = Path(root, config["TLS_CERT"])
        key = Path(root, config["TLS_KEY"]) if config.get("TLS_KEY") else None
        files = TlsFiles(cert, key, None)
        server_context(files)  # a missing or unreadable file stops the start, saying which
        return files
    folder = tls_folder(config, root)
    ensure_server_certificate(folder, get_local_names())
    return TlsFiles(folder / SERVER_CERT, folder / SERVER_KEY, folder / CA_CERT)


def wrap_listener(listener: Any, config: Mapping[str, Any], root: str | Path, socketio: Any) -> Any:
    """``listener`` serving TLS (eventlet's green SSL: each handshake happens in its
    connection's greenlet, on its first read, within the head's deadline), with the files
    ``prepare`` gives; a certificate the chat made is kept fresh while it runs."""
    from eventlet.green import ssl as green_ssl

    files = prepare(config, root)
    context = server_context(files, green_ssl.SSLContext)
    if files.ca_cert is not None:
        folder = tls_folder(config, root)
        socketio.start_background_task(
            keep_fresh, context, folder, files, REFRESH_INTERVAL_S, socketio.sleep
        )
    return context.wrap_socket(listener, server_side=True)


def get_fingerprint(pem: bytes) -> str:
    """The SHA-256 fingerprint of a PEM certificate, as devices show it (AA:BB:...)."""
    digest = hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem.decode())).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def server_context(files: TlsFiles, context_class: type = ssl.SSLContext) -> ssl.SSLContext:
    """A server-side TLS context presenting ``files`` (TLS 1.2 and up)."""
    context = context_class(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    load_certificate(context, files)
    return context


def load_certificate(context: ssl.SSLContext, files: TlsFiles) -> None:
    """Present ``files`` on ``context`` from its next handshake on."""
    try:
        context.load_cert_chain(files.cert, files.key)
    except (OSError, ssl.SSLError) as error:
        raise TlsSetupError(
            f"Cannot serve HTTPS with the certificate {files.cert} and key "
            f"{files.key or '(in the same file)'}: {error}. Check TLS_CERT and TLS_KEY: "
            f"a PEM certificate (chain) and its unencrypted PEM private key."
        ) from None


@dataclass(frozen=True)
class LocalNames:
    """The names a device on the LAN may use for this machine."""

    dns: tuple[str, ...]
    ips: tuple[str, ...]


def get_local_names(
    addresses: Iterable[str] | None = None, hostname: str | None = None
) -> LocalNames:
    """localhost and ``<hostname>.local``, loopback and every address of this machine's
    network interfaces (``addresses`` in their place when given)."""
    hostname = (hostname if hostname is not None else socket.gethostname()).split(".")[0]
    dns = ["localhost"] + ([f"{hostname}.local"] if hostname else [])
    found = get_interface_addresses() if addresses is None else list(addresses)
    ips = {"127.0.0.1", "::1"}
    for address in found:
        with contextlib.suppress(ValueError):
            parsed = ipaddress.ip_address(address.split("%")[0])
            if not parsed.is_link_local and not parsed.is_unspecified:
                ips.add(str(parsed))
    return LocalNames(tuple(dns), tuple(sorted(ips, key=_address_order)))


def get_interface_addresses() -> list[str]:
    """The IP addresses of this machine's network interfaces."""
    found = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            found.append(ip.ip if isinstance(ip.ip, str) else ip.ip[0])
    return found


def _address_order(address: str) -> tuple[int, Any]:
    parsed = ipaddress.ip_address(address)
    return (parsed.version, parsed)


def ensure_server_certificate(
    folder: Path, names: LocalNames, now: datetime.datetime | None = None
) -> bool:
    """Make the CA if there is none, and a server certificate unless the one there is
    signed by it, names exactly ``names`` and is good for a month more; True when made."""
    now = now or datetime.datetime.now(datetime.UTC)
    folder.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    make_private(folder)
    ca_cert, ca_key = ensure_ca(folder, now)
    current = _read_certificate(folder / SERVER_CERT)
    if _still_good(current, _read_key(folder / SERVER_KEY), ca_cert, names, now):
        return False
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _server_certificate(key, ca_cert, ca_key, names, now)
    _write_private(folder / SERVER_KEY, _key_pem(key))
    _write_private(folder / SERVER_CERT, cert.public_bytes(serialization.Encoding.PEM))
    log.info("Made a server certificate for %s", ", ".join(names.dns + names.ips))
    return True


def ensure_ca(
    folder: Path, now: datetime.datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """The chat's CA, made on the first call and read from ``folder`` afterwards."""
    cert_path, key_path = folder / CA_CERT, folder / CA_KEY
    if cert_path.is_file() and key_path.is_file():
        # Never made again behind the owner's back: every device trusts this one.
        try:
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as error:
            raise TlsSetupError(
                f"Cannot read the chat's certificate authority in {folder}: {error}. Put back "
                f"{CA_CERT} and {CA_KEY} from a backup, or delete the folder to make a new "
                f"CA (every device must then install the new one)."
            ) from None
        if key.public_key() != cert.public_key():
            raise TlsSetupError(
                f"{key_path} is not the key of {cert_path}. Put back the pair from a backup, "
                f"or delete {folder} to make a new CA (every device must then install it)."
            )
        return cert, key  # type: ignore[return-value]
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Team chat"),
            x509.NameAttribute(
                NameOID.COMMON_NAME, f"Team chat local CA ({socket.gethostname()})"[:64]
            ),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            _key_usage(key_cert_sign=True, crl_sign=True),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    # The key first: a key left without its certificate by a crash is replaced by a new CA
    # next time, which no device can have trusted yet.
    _write_private(key_path, _key_pem(key))
    _write_private(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    log.info("Made a certificate authority for HTTPS on the LAN: %s", cert_path)
    return cert, key


def keep_fresh(
    context: ssl.SSLContext, folder: Path, files: TlsFiles, interval: float, sleep: Any
) -> None:
    """For the server's lifetime: every ``interval`` seconds, make a new server certificate
    if the machine's addresses changed (a laptop moved to another network) or it nears its
    end, and present it from the next handshake on. The work runs off the event loop."""
    import off_loop

    while True:
        sleep(interval)
        try:
            if off_loop.run(_refresh, folder):
                load_certificate(context, files)
        except (Exception, TlsSetupError):
            log.exception("Renewing the server certificate failed; the current one stays")


def _refresh(folder: Path) -> bool:
    return ensure_server_certificate(folder, get_local_names())


def certificate_names(cert: x509.Certificate) -> LocalNames:
    """The DNS names and IP addresses a certificate is valid for."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return LocalNames((), ())
    dns = tuple(san.get_values_for_type(x509.DNSName))
    ips = tuple(str(ip) for ip in san.get_values_for_type(x509.IPAddress))
    return LocalNames(dns, tuple(sorted(ips, key=_address_order)))


def _still_good(
    cert: x509.Certificate | None,
    key: Any,
    ca_cert: x509.Certificate,
    names: LocalNames,
    now: datetime.datetime,
) -> bool:
    if cert is None or key is None or key.public_key() != cert.public_key():
        return False
    if cert.issuer != ca_cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):  # signed by another CA: not ours
        return False
    have = certificate_names(cert)
    if set(have.dns) != set(names.dns) or set(have.ips) != set(names.ips):
        return False
    return cert.not_valid_after_utc - RENEW_BEFORE > now


def _key_usage(
    digital_signature: bool = False, key_cert_sign: bool = False, crl_sign: bool = False
) -> x509.KeyUsage:
    """A KeyUsage that allows only what is named (every other use is refused)."""
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _server_certificate(
    key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    names: LocalNames,
    now: datetime.datetime,
) -> x509.Certificate:
    alternatives: list[x509.GeneralName] = [x509.DNSName(name) for name in names.dns]
    alternatives += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in names.ips]
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names.dns[-1])])
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + datetime.timedelta(days=SERVER_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            _key_usage(digital_signature=True),
            critical=True,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )


def read_certificate_pem(path: Path) -> bytes:
    """The first certificate in a PEM file, written out again on its own (no key with it)."""
    return x509.load_pem_x509_certificate(path.read_bytes()).public_bytes(
        serialization.Encoding.PEM
    )


def _read_certificate(path: Path) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return None


def _read_key(path: Path) -> Any:
    try:
        return serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return None


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` whole and owner-only: a new file renamed over the old, so a
    crash leaves either the old file or the new one."""
    partial = path.with_name(f".{path.name}.partial")
    with contextlib.suppress(FileNotFoundError):
        partial.unlink()
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)
