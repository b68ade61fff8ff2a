"""Found on the LAN: the chat announced by mDNS as ``<hostname>.local`` with an
``_http._tcp`` (or ``_https._tcp``) service, so a laptop can open ``https://<hostname>.local``
and a service browser lists the chat.

python-zeroconf runs asyncio on threads of its own, which eventlet's monkey-patching would
turn into greenlets sharing the chat's loop; so the announcement lives in a child process
(``python lan_announce.py ...``), started by ``start`` and told to stop by the end of its
standard input. That end comes whichever way the chat stops, even killed: the child then
unregisters the service (mDNS "goodbye" packets) and exits. Announcing never stops the chat:
no network, multicast refused, zeroconf missing: one line in the log, and the chat goes on.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import logging
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger("chat")

SERVICE_TYPES = {"http": "_http._tcp.local.", "https": "_https._tcp.local."}
STOP_TIMEOUT_S = 3.0


def get_host_label(hostname: str | None = None) -> str:
    """This machine's name as mDNS announces it: the first label of its host name."""
    return (hostname if hostname is not None else socket.gethostname()).split(".")[0]


def local_name(hostname: str | None = None) -> str:
    """``<hostname>.local``, the name the chat announces for this machine."""
    return f"{get_host_label(hostname)}.local"


def build_service_info(host: str, port: int, scheme: str, addresses: Sequence[str]) -> Any:
    """The zeroconf service the chat registers: ``Chat on <host>`` of type ``_http._tcp``
    or ``_https._tcp`` at ``<host>.local:<port>``, path ``/``."""
    from zeroconf import ServiceInfo

    service_type = SERVICE_TYPES[scheme]
    return ServiceInfo(
        service_type,
        f"Chat on {host}.{service_type}",
        port=port,
        properties={"path": "/"},
        server=f"{host}.local.",
        parsed_addresses=list(addresses),
    )


def get_announced_addresses(interfaces: Sequence[str]) -> list[str]:
    """The addresses to announce: the given interface addresses, else every address of
    this machine but loopback and link-local ones."""
    if interfaces:
        return list(interfaces)
    import ifaddr

    found = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            with contextlib.suppress(ValueError):
                parsed = ipaddress.ip_address(ip.ip if isinstance(ip.ip, str) else ip.ip[0])
                if not (parsed.is_loopback or parsed.is_link_local):
                    found.append(str(parsed))
    return found


class Stopped(Exception):
    """SIGTERM reached the announcing child: unregister and leave."""


def _stop(_signal: int, _frame: Any) -> None:
    raise Stopped


class Announcer:
    """The child process announcing the chat; ``stop`` unregisters it."""

    def __init__(self, process: subprocess.Popen[bytes]):
        self.process = process

    def stop(self) -> None:
        """Close the child's input (its signal to unregister), then wait for it a little."""
        with contextlib.suppress(OSError):
            if self.process.stdin:
                self.process.stdin.close()
        try:
            self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start(config: dict[str, Any], scheme: str) -> Announcer | None:
    """Announce the chat by mDNS in a child process, unless ``MDNS`` is off or the chat
    listens on loopback only (the LAN could not reach it); never raises."""
    if not config["MDNS"] or listens_on_loopback_only(config.get("HOST", "0.0.0.0")):
        return None
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--host",
        get_host_label(),
        "--port",
        str(config["PORT"]),
        "--scheme",
        scheme,
    ]
    for interface in split_list(config["MDNS_INTERFACES"]):
        command += ["--interface", interface]
    try:
        process = subprocess.Popen(command, stdin=subprocess.PIPE)
    except OSError as error:
        log.warning("Not announced on the LAN (mDNS): %s", error)
        return None
    return Announcer(process)


def listens_on_loopback_only(host: str) -> bool:
    """Whether ``host`` (the HOST setting) is a loopback address or name."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def split_list(value: str) -> list[str]:
    """The items of a comma-separated setting."""
    return [item.strip() for item in value.split(",") if item.strip()]


def announce_until_stopped(
    info: Any,
    interfaces: Sequence[str],
    wait_for_stop: Callable[[], None],
    make_zeroconf: Callable[..., Any] | None = None,
) -> int:
    """Register ``info``, wait for ``wait_for_stop`` to return, unregister; 0 when it was
    announced, 1 (and one line of log) when it could not be."""
    if make_zeroconf is None:
        from zeroconf import Zeroconf as make_zeroconf
    try:
        zeroconf = make_zeroconf(interfaces=list(interfaces)) if interfaces else make_zeroconf()
    except Exception as error:  # no network, multicast refused: the chat runs without
        log.warning("Not announced on the LAN (mDNS): %s", error)
        return 1
    try:
        try:
            zeroconf.register_service(info, allow_name_change=True)
        except Exception as error:
            log.warning("Not announced on the LAN (mDNS): %s", error)
            return 1
        log.info("Announced on the LAN (mDNS) as %s, %s", info.server.rstrip("."), info.name)
        wait_for_stop()
        with contextlib.suppress(Exception):  # leaving anyway; the records expire by TTL
            zeroconf.unregister_service(info)
        return 0
    finally:
        with contextlib.suppress(Exception):
            zeroconf.close()


def wait_for_end_of_input() -> None:
    """Return when the chat closes our standard input (or ends, which closes it too)."""
    with contextlib.suppress(Stopped):
        while sys.stdin.buffer.read(4096):
            pass


def main(argv: Sequence[str] | None = None) -> int:
    """The child process: announce until the chat closes our input or sends SIGTERM."""
    parser = argparse.ArgumentParser(description="Announce the chat by mDNS until stdin ends.")
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--scheme", choices=sorted(SERVICE_TYPES), required=True)
    parser.add_argument("--interface", action="append", default=[])
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Ctrl+C in the terminal reaches the whole process group; the chat's end, seen as the
    # end of our input, is what stops us, after unregistering. SIGTERM stops us the same way.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _stop)
    try:
        addresses = get_announced_addresses(args.interface)
        info = build_service_info(args.host, args.port, args.scheme, addresses)
    except Exception as error:
        log.warning("Not announced on the LAN (mDNS): %s", error)
        return 1
    return announce_until_stopped(info, args.interface, wait_for_end_of_input)


if __name__ == "__main__":
    sys.exit(main())
