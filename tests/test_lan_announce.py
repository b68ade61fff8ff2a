"""Found on the LAN: the mDNS service the chat registers, the setting that turns it off,
a failure that leaves the chat running, and a real announcement on loopback only (no
multicast leaves this machine), withdrawn when the chat stops."""

from __future__ import annotations

import logging
import threading

import pytest
from zeroconf import ServiceBrowser, ServiceListener, Zeroconf

import lan_announce
from bench.servers import free_port

LOOPBACK = "127.0.0.1"


def test_the_service_names_the_host_its_port_and_the_path():
    info = lan_announce.build_service_info("studio", 5443, "https", ["192.168.1.20"])
    assert info.type == "_https._tcp.local."
    assert info.name == "Chat on studio._https._tcp.local."
    assert info.server == "studio.local."
    assert info.port == 5443
    assert info.properties == {b"path": b"/"}
    assert info.parsed_addresses() == ["192.168.1.20"]
    plain = lan_announce.build_service_info("studio", 5000, "http", ["192.168.1.20"])
    assert plain.type == "_http._tcp.local."
    assert lan_announce.local_name("studio.example.org") == "studio.local"


def test_the_setting_turns_the_announcement_off():
    assert lan_announce.start({"MDNS": False, "PORT": 5000, "MDNS_INTERFACES": ""}, "http") is None


def test_a_chat_listening_on_loopback_only_is_not_announced():
    for host in ["127.0.0.1", "::1", "localhost"]:
        config = {"MDNS": True, "HOST": host, "PORT": 5000, "MDNS_INTERFACES": ""}
        assert lan_announce.start(config, "http") is None, host


def test_a_network_that_refuses_multicast_costs_one_line_and_nothing_else(caplog):
    info = lan_announce.build_service_info("studio", 5000, "http", [LOOPBACK])

    def no_network(**_options):
        raise OSError(19, "No such device")

    with caplog.at_level(logging.WARNING, logger="chat"):
        code = lan_announce.announce_until_stopped(info, [], lambda: None, make_zeroconf=no_network)
    assert code == 1
    assert [r.getMessage() for r in caplog.records] == [
        "Not announced on the LAN (mDNS): [Errno 19] No such device"
    ]


def test_a_refused_registration_closes_zeroconf_and_costs_one_line(caplog):
    info = lan_announce.build_service_info("studio", 5000, "http", [LOOPBACK])
    closed = []

    class Refusing:
        def register_service(self, *_args, **_options):
            raise OSError("multicast refused")

        def close(self):
            closed.append(True)

    with caplog.at_level(logging.WARNING, logger="chat"):
        code = lan_announce.announce_until_stopped(
            info, [], lambda: None, make_zeroconf=lambda **_options: Refusing()
        )
    assert (code, closed) == (1, [True])
    assert len(caplog.records) == 1
    assert "multicast refused" in caplog.records[0].getMessage()


def test_an_interface_that_is_not_there_ends_the_child_and_not_the_caller():
    announcer = lan_announce.start(
        {"MDNS": True, "PORT": free_port(), "MDNS_INTERFACES": "203.0.113.9"}, "http"
    )
    assert announcer is not None
    assert announcer.process.wait(30) == 1


class Seen(ServiceListener):
    """The services a browser on loopback saw come and go."""

    def __init__(self) -> None:
        self.added: set[str] = set()
        self.removed: set[str] = set()
        self.changed = threading.Condition()

    def add_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        with self.changed:
            self.added.add(name)
            self.changed.notify_all()

    def remove_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        with self.changed:
            self.removed.add(name)
            self.changed.notify_all()

    def update_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        pass

    def wait(self, what: str, name: str, timeout: float = 20.0) -> None:
        with self.changed:
            if not self.changed.wait_for(lambda: name in getattr(self, what), timeout):
                pytest.fail(f"Within {timeout:.0f} s, the browser never saw {name} {what}")


@pytest.fixture
def loopback_browser():
    """A zeroconf browser of ``_https._tcp`` on loopback only."""
    zeroconf = Zeroconf(interfaces=[LOOPBACK])
    seen = Seen()
    browser = ServiceBrowser(zeroconf, "_https._tcp.local.", seen)
    yield zeroconf, seen
    browser.cancel()
    zeroconf.close()


def test_the_child_announces_on_loopback_and_withdraws_when_told(loopback_browser):
    zeroconf, seen = loopback_browser
    port = free_port()
    announcer = lan_announce.start(
        {"MDNS": True, "PORT": port, "MDNS_INTERFACES": LOOPBACK}, "https"
    )
    assert announcer is not None
    name = f"Chat on {lan_announce.get_host_label()}._https._tcp.local."
    try:
        seen.wait("added", name)
        info = zeroconf.get_service_info("_https._tcp.local.", name, timeout=5000)
        assert info is not None
        assert (info.port, info.server) == (port, f"{lan_announce.local_name()}.")
        assert info.parsed_addresses() == [LOOPBACK]
    finally:
        announcer.stop()
    assert announcer.process.returncode == 0
    seen.wait("removed", name)
