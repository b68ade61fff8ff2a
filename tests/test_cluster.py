"""Two real workers (``python app.py``) on one PostgreSQL database and one Redis, with real
nginx in front: people on different workers talk live and see each other come and go, a
login and the send limit are shared, long-polling stays on one worker, a killed worker's
people go offline, and its clients reconnect through nginx to the other worker and catch
up with every acknowledged message exactly once.

nginx, Redis or PostgreSQL missing: these tests are skipped with the reason, except under
``CI=true``, where they fail.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import socketio

from bench import servers
from database import Database
from deploy.cluster import (
    answers,
    check_nginx_config,
    find_nginx,
    listen_address,
    nginx_command,
    worker_command,
    worker_env,
    write_nginx_config,
)
from presence import RedisPresence
from rate_limits import TOO_FAST
from tests.live_server import ROOT, LiveServer, RealClient, csrf_token, or_fail, wait_for
from tests.postgres import postgres_schema
from tests.redis_server import TEST_REDIS_URL, redis_client, redis_prefix
from tests.skips import skip_or_fail

# It starts real servers: `pytest -m "not slow"` leaves it out.
pytestmark = pytest.mark.slow

PRESENCE_TTL_S = 3
SEND_LIMIT = 30  # per minute: spent half on each worker, then refused on both
START_ATTEMPTS = 3


# -- the cluster ---------------------------------------------------------------------------


def launch_worker(folder: Path, port: int, settings: dict[str, str]) -> LiveServer:
    """One worker, started the way ``deploy/cluster.py`` starts it."""
    return servers.launch("worker", worker_command(), worker_env(port, settings), folder, port)


def start_workers(
    folder: Path, settings: dict[str, str], ports: list[int] | None = None
) -> list[LiveServer]:
    """Workers started together, each answering GET /login, or a failed test with the
    output. Without ``ports``: on free ports, chosen again if one is taken meanwhile."""
    return or_fail(
        servers.start_together,
        lambda: [launch_worker(folder, port, settings) for port in ports or free_ports(2)],
        attempts=START_ATTEMPTS if ports is None else 1,
    )


def start_nginx(nginx: str, folder: Path, workers: list[LiveServer]) -> LiveServer:
    """nginx on a free loopback port in front of ``workers``, configured by the same code
    as ``make cluster``; as a server whose log is nginx's error log."""
    upstreams = [worker.url.removeprefix("http://") for worker in workers]

    def launch_nginx() -> LiveServer:
        port = servers.free_port()
        config = write_nginx_config(folder, upstreams, listen_address("127.0.0.1", port))
        check_nginx_config(nginx, config)
        command = nginx_command(nginx, config)
        front = servers.launch(
            "nginx", command, dict(os.environ), folder, port, log_path=folder / "nginx-error.log"
        )
        front.database_url = workers[0].database_url
        return front

    return or_fail(servers.start_one, launch_nginx, attempts=START_ATTEMPTS)


@dataclass
class Cluster:
    """The running workers, nginx in front of them, and the Redis they share."""

    workers: list[LiveServer]
    front: LiveServer  # nginx: its url is the public address
    folder: Path
    settings: dict[str, str]
    presence: RedisPresence

    @property
    def access_log(self) -> Path:
        return self.folder / "nginx" / "nginx-access.log"

    def access_lines(self) -> list[str]:
        """nginx's access log, a line per request, each naming the worker that answered."""
        if not self.access_log.exists():
            return []
        return self.access_log.read_text().splitlines()

    def worker_behind_nginx(self) -> LiveServer:
        """The worker nginx sends the tests' clients (all from 127.0.0.1) to, now."""
        before = len(self.access_lines())
        assert answers(f"{self.front.url}/login")
        lines = wait_for(lambda: self.access_lines()[before:], "nginx logs the request")
        return self.worker_at(upstream_of(lines[-1]))

    def worker_at(self, address: str) -> LiveServer:
        """The worker listening at ``address`` (host:port)."""
        return next(worker for worker in self.workers if worker.url == f"http://{address}")

    def revive(self) -> None:
        """Start again, on its port, every worker that died (a test killed it)."""
        for index, worker in enumerate(self.workers):
            if worker.process.poll() is not None:
                port = int(worker.url.rsplit(":", 1)[1])
                self.workers[index] = start_workers(self.folder, self.settings, [port])[0]


def upstream_of(line: str) -> str:
    """The worker that answered a request of nginx's access log. After a failover nginx
    names every worker it tried, the one that answered last."""
    tried = line.split("upstream=", 1)[1].split(" time=", 1)[0]
    return tried.split(",")[-1].strip()


def free_ports(count: int) -> list[int]:
    """``count`` different loopback ports nobody listens on right now."""
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(servers.free_port())
    return sorted(ports)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Two workers on a fresh PostgreSQL schema and a Redis prefix of their own, and nginx
    on a loopback port in front of them; all stopped at the end, also on failure."""
    nginx = find_nginx()
    if nginx is None:
        skip_or_fail("nginx is not installed (Debian: apt-get install nginx; or set NGINX)")
    with contextlib.ExitStack() as stack:
        prefix = stack.enter_context(redis_prefix())
        database_url = stack.enter_context(postgres_schema())
        # Once, before the workers: two workers creating a fresh schema at once would race.
        database = Database(database_url, str(ROOT), pool_size=1)
        database.init_schema()
        database.close()
        folder = tmp_path_factory.mktemp("cluster")
        settings = {
            "DATABASE_URL": database_url,
            "REDIS_URL": TEST_REDIS_URL,
            "REDIS_PREFIX": prefix,
            "SECRET_KEY": secrets.token_hex(32),
            "TRUSTED_PROXIES": "1",
            "PRESENCE_TTL_SECONDS": str(PRESENCE_TTL_S),
            "SEND_RATE_LIMIT": f"{SEND_LIMIT} per minute",
            # Every test registers its own people, all from 127.0.0.1.
            "REGISTER_RATE_LIMIT": "1000 per hour",
            # scrypt's deliberate slowness would dominate; the hash is still real.
            "PASSWORD_HASH_METHOD": servers.CHEAP_PASSWORD_HASH,
            "UPLOAD_FOLDER": str(folder / "uploads"),
            "SESSION_FILE_DIR": str(folder / "sessions"),
        }
        workers: list[LiveServer] = []  # revive() replaces a killed one in place

        def stop_workers() -> None:
            for worker in workers:
                worker.stop()

        stack.callback(stop_workers)
        workers.extend(start_workers(folder, settings))
        front = start_nginx(nginx, folder / "nginx", workers)
        stack.callback(front.stop)
        presence = RedisPresence(redis_client(), prefix, PRESENCE_TTL_S)
        yield Cluster(workers, front, folder, settings, presence)


# -- people --------------------------------------------------------------------------------


@dataclass
class People:
    """The people of one test and their sockets, all closed when it ends."""

    cluster: Cluster
    clients: list[RealClient] = field(default_factory=list)
    sockets: list[socketio.Client] = field(default_factory=list)

    def register(self, server: LiveServer, name: str) -> RealClient:
        """A new person, registered (so logged in) through ``server``'s real form."""
        person = RealClient(server, f"{name}-{uuid.uuid4().hex[:6]}").register()
        self.clients.append(person)
        return person

    def on(self, person: RealClient, server: LiveServer) -> RealClient:
        """The same person, with the same login cookie, talking to another server."""
        same = RealClient(server, person.name, person.password)
        same.http = person.http
        self.clients.append(same)
        return same

    def close(self) -> None:
        """Disconnect everyone, then wait until the cluster counts nobody online."""
        for client in self.clients:
            with contextlib.suppress(Exception):
                client.disconnect()
        for sock in self.sockets:
            with contextlib.suppress(Exception):
                sock.disconnect()
        wait_for(
            lambda: self.cluster.presence.online_count() == 0,
            "everyone of the test is offline",
            timeout=PRESENCE_TTL_S + 3,
        )


@pytest.fixture
def people(cluster: Cluster) -> Iterator[People]:
    """The test's people, on a cluster whose workers all run (whatever a test killed)."""
    cluster.revive()
    found = People(cluster)
    yield found
    found.close()


def send(client: RealClient, chat_id: int, body: str) -> dict[str, Any]:
    """Send a message and return the stored one from the ack."""
    ack = client.call("message_sent", {"chat_id": chat_id, "body": body, "client_id": new_id()})
    assert ack["ok"], ack
    return ack["message"]


def new_id() -> str:
    return uuid.uuid4().hex


def open_direct_chat(person: RealClient, partner: RealClient) -> int:
    """``person`` opens the direct chat with ``partner`` through POST /add."""
    url = person.server.url
    token = csrf_token(person.http.get(f"{url}/chats").text)
    response = person.http.post(
        f"{url}/add",
        data={"user_id": partner.id, "csrf_token": token},
        allow_redirects=False,
    )
    assert response.status_code == 303, response.text[:300]
    return int(response.headers["Location"].rsplit("=", 1)[1])


def open_page(http: requests.Session, url: str) -> requests.Response:
    """GET a page as a browser does (HTML wanted), without following a redirect."""
    return http.get(url, headers={"Accept": "text/html"}, allow_redirects=False)


def received_live(client: RealClient, message: dict[str, Any]) -> bool:
    return {"message": message} in client.received("message_received_from_current_chat")


def talk_live(
    first: RealClient, second: RealClient, chat_id: int, said: str, answered: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both open the chat; ``first`` says something and ``second`` answers, each message
    seen live by the other. Returns the two stored messages."""
    first.call("join_chat", {"chat_id": chat_id})
    second.call("join_chat", {"chat_id": chat_id})
    message = send(first, chat_id, said)
    wait_for(lambda: received_live(second, message), f"{second.name} sees {said!r} live")
    reply = send(second, chat_id, answered)
    wait_for(lambda: received_live(first, reply), f"{first.name} sees {answered!r} live")
    return message, reply


# -- 1. people on different workers talk live ----------------------------------------------


def test_alice_on_one_worker_and_bob_on_the_other_talk_live(cluster, people):
    """A direct chat, a new channel, its messages and typing all cross between workers."""
    first, second = cluster.workers
    alice = people.register(first, "alice")
    bob = people.register(second, "bob")
    alice.connect()
    bob.connect()

    chat_id = open_direct_chat(alice, bob)  # an HTTP request on worker 1
    first_message = send(alice, chat_id, "the first message")
    wait_for(
        lambda: any(e["message"] == first_message for e in bob.received("new_user_sent_message")),
        "bob, on worker 2, hears of the direct chat with its first message from worker 1",
    )
    wait_for(
        lambda: (
            {"chat_id": chat_id, "message": first_message}
            in bob.received("message_received_from_another_chat")
        ),
        "bob's socket on worker 2 joined the chat's room when alice opened it on worker 1",
    )
    talk_live(alice, bob, chat_id, "hello from worker 1", "hello from worker 2")

    assert bob.call("typing", {"chat_id": chat_id}) == {"ok": True}
    typing = {"chat_id": chat_id, "user_id": bob.id, "username": bob.name}
    wait_for(lambda: typing in alice.received("user_typing"), "alice sees bob typing")

    name = f"ops-{new_id()[:6]}"
    channel = bob.call("create_channel", {"name": name})["chat"]["id"]
    announced = {"chat": {"id": channel, "kind": "channel", "name": name, "topic": ""}}
    wait_for(
        lambda: announced in alice.received("channel_created"),
        "alice, on worker 1, sees the channel bob created on worker 2",
    )
    assert alice.call("join_channel", {"chat_id": channel})["ok"]
    in_channel, answer = talk_live(
        alice, bob, channel, "in the channel, from worker 1", "in the channel, from worker 2"
    )
    alice.call("join_chat", {"chat_id": chat_id})  # alice goes back to the direct chat
    later = send(bob, channel, "while alice reads the direct chat")
    wait_for(
        lambda: (
            {"chat_id": channel, "message": later}
            in alice.received("message_received_from_another_chat")
        ),
        "alice's chat list moves the channel up",
    )
    assert all(
        data["message"]["id"] not in (in_channel["id"], answer["id"])
        for data in alice.received("message_received_from_another_chat")
    ), "a message reaches each socket once: alice had the channel open for those"


# -- 2. shared state in Redis --------------------------------------------------------------


def test_presence_and_the_online_count_agree_across_workers(cluster, people):
    """carol coming online on worker 2 is announced to alice on worker 1 with the count
    of the whole cluster, and both workers answer the same for who is online."""
    first, second = cluster.workers
    alice = people.register(first, "alice")
    carol = people.register(second, "carol")
    chat_id = open_direct_chat(alice, carol)
    alice.connect()
    send(alice, chat_id, "are you there?")  # from now on the chat is in carol's list too
    listed = alice.call("list_chats")
    assert listed["online_count"] == 1
    assert next(c for c in listed["chats"] if c["id"] == chat_id)["partner_online"] is False

    carol.connect()
    wait_for(
        lambda: {"user_id": carol.id, "online": True} in alice.received("presence_updated"),
        "alice hears that carol came online",
    )
    wait_for(lambda: {"count": 2} in alice.received("online_users_updated"), "count 2 on w1")
    wait_for(lambda: {"count": 2} in carol.received("online_users_updated"), "count 2 on w2")
    for person, partner in ((alice, carol), (carol, alice)):
        listed = person.call("list_chats")
        assert listed["online_count"] == 2
        chat = next(c for c in listed["chats"] if c["id"] == chat_id)
        assert chat["partner_online"] is True, f"{person.name} sees {partner.name} online"

    alice.events.clear()
    carol.disconnect()
    wait_for(
        lambda: {"user_id": carol.id, "online": False} in alice.received("presence_updated"),
        "alice hears that carol went offline",
    )
    wait_for(lambda: {"count": 1} in alice.received("online_users_updated"), "count back to 1")


def test_a_login_on_one_worker_is_valid_on_the_other_and_logout_ends_it_everywhere(cluster, people):
    """One session in Redis: the cookie from worker 1 opens pages and sockets on worker 2,
    and logging out on worker 2 closes alice's socket on worker 1 at once."""
    first, second = cluster.workers
    alice = people.register(first, "alice")
    alice_on_second = people.on(alice, second)
    assert open_page(alice.http, f"{second.url}/chats").status_code == 200
    stranger = requests.Session()
    stranger.trust_env = False
    assert open_page(stranger, f"{second.url}/chats").status_code == 302  # to /login
    prefix = cluster.settings["REDIS_PREFIX"]
    assert list(redis_client().scan_iter(f"{prefix}:session:*")), "sessions are in Redis"

    alice.connect()
    alice_on_second.connect()
    token = csrf_token(alice_on_second.http.get(f"{second.url}/chats").text)
    response = alice_on_second.http.post(
        f"{second.url}/logout", data={"csrf_token": token}, allow_redirects=False
    )
    assert response.status_code == 303
    wait_for(lambda: alice.received("logged_out"), "worker 1 tells alice's socket she left")
    wait_for(lambda: not alice.sio.connected, "worker 1 closes alice's socket")
    assert open_page(alice.http, f"{first.url}/chats").status_code == 302


def test_the_send_limit_is_counted_across_workers(cluster, people):
    """Half the limit spent on each worker leaves nothing on either."""
    first, second = cluster.workers
    alice = people.register(first, "alice")
    alice_on_second = people.on(alice, second)
    alice.connect()
    alice_on_second.connect()
    channel = alice.call("create_channel", {"name": f"flood-{new_id()[:6]}"})["chat"]["id"]
    half = SEND_LIMIT // 2
    for n in range(half):
        send(alice, channel, f"on worker 1, {n}")
    for n in range(SEND_LIMIT - half):
        send(alice_on_second, channel, f"on worker 2, {n}")

    for client in (alice, alice_on_second):
        ack = client.call(
            "message_sent", {"chat_id": channel, "body": "one too many", "client_id": new_id()}
        )
        assert (ack["ok"], ack["error"]) == (False, TOO_FAST), ack
    prefix = cluster.settings["REDIS_PREFIX"]
    assert list(redis_client().scan_iter(f"{prefix}:limits*")), "the counters are in Redis"


# -- nginx in front ------------------------------------------------------------------------


def get_login_page_from(address: str, url: str) -> int:
    """GET /login through ``url`` from the loopback ``address`` (127.x.y.z), as if from
    another machine of one LAN; the status code."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5, source_address=(address, 0))
    try:
        connection.request("GET", "/login")
        return connection.getresponse().status
    finally:
        connection.close()


def test_nginx_keeps_each_address_on_one_worker_and_spreads_a_subnet(cluster, people):
    """Sticky by the whole client address: each of 24 clients of one /24 network always
    reaches the same worker, and the clients are spread over both workers (ip_hash, which
    hashes only the first three bytes, would put the whole LAN on one)."""
    before = len(cluster.access_lines())
    addresses = [f"127.0.0.{n}" for n in range(10, 34)]
    for _ in range(3):
        for address in addresses:
            assert get_login_page_from(address, cluster.front.url) == 200

    def logged() -> list[str]:
        found = cluster.access_lines()[before:]
        return found if len(found) >= 3 * len(addresses) else []

    lines = wait_for(logged, "nginx logs every request")
    served: dict[str, set[str]] = {}
    for line in lines:
        served.setdefault(line.split(" ", 1)[0], set()).add(upstream_of(line))
    assert sorted(served) == sorted(addresses)
    assert all(len(workers) == 1 for workers in served.values()), served
    used = set().union(*served.values())
    assert used == {worker.url.removeprefix("http://") for worker in cluster.workers}


def test_long_polling_through_nginx_stays_on_one_worker(cluster, people):
    """Every long-poll of a Socket.IO session must reach the worker that opened it: nginx
    sends every request of one address to one worker, and the chat works over polling."""
    front = cluster.front
    before = len(cluster.access_lines())
    alice = people.register(front, "alice")
    bob = people.register(front, "bob")
    alice.connect(transport="polling")
    bob.connect(transport="polling")
    channel = alice.call("create_channel", {"name": f"poll-{new_id()[:6]}"})["chat"]["id"]
    assert bob.call("join_channel", {"chat_id": channel})["ok"]
    alice.call("join_chat", {"chat_id": channel})
    bob.call("join_chat", {"chat_id": channel})
    for n in range(3):
        question = send(alice, channel, f"over long-polling {n}")
        wait_for(lambda m=question: received_live(bob, m), f"bob gets message {n} by polling")
        answer = send(bob, channel, f"answer {n}")
        wait_for(lambda m=answer: received_live(alice, m), f"alice gets answer {n} by polling")

    polls = [line for line in cluster.access_lines()[before:] if "/socket.io/" in line]
    assert len(polls) >= 10, polls
    upstreams = {line.split("upstream=", 1)[1].split(" time=")[0] for line in polls}
    assert len(upstreams) == 1, f"long-polls went to several workers: {upstreams}"
    assert all('" 200 ' in line for line in polls), "no long-poll was refused"


# -- 4. a worker dies ----------------------------------------------------------------------


def test_a_killed_workers_people_go_offline_within_the_ttl(cluster, people):
    """No worker is left to say goodbye for dave: his entries expire, and the surviving
    worker announces him offline within PRESENCE_TTL_SECONDS (plus one heartbeat)."""
    first, second = cluster.workers
    alice = people.register(first, "alice")
    dave = people.register(second, "dave")
    dave_id = dave.id  # asked of worker 2 while it lives
    open_direct_chat(alice, dave)  # alice's list shows dave's dot
    alice.connect()
    dave.connect()
    wait_for(
        lambda: {"user_id": dave_id, "online": True} in alice.received("presence_updated"),
        "alice sees dave online",
    )
    second.crash()
    killed_at = time.monotonic()
    wait_for(
        lambda: {"user_id": dave_id, "online": False} in alice.received("presence_updated"),
        "alice sees dave go offline after his worker was killed",
        timeout=PRESENCE_TTL_S * 4 / 3 + 2,
    )
    assert time.monotonic() - killed_at <= PRESENCE_TTL_S * 4 / 3 + 1
    wait_for(lambda: {"count": 1} in alice.received("online_users_updated"), "count back to 1")
    assert alice.call("list_chats")["online_count"] == 1


class Reconnecting:
    """A person's python-socketio client through nginx that reconnects by itself and
    follows one chat as the browser does (static/js/conversation.js): it keeps every
    message shown (the first page, live events, catch-ups), and from a disconnect until
    its catch-up, messages arriving live do not count as "the newest shown", so the
    catch-up asks for everything after the last one seen before the drop."""

    def __init__(self, person: RealClient, people: People):
        self.person = person
        self.sio = socketio.Client(
            reconnection=True,
            reconnection_attempts=0,
            reconnection_delay=0.2,
            reconnection_delay_max=1,
            randomization_factor=0,
        )
        people.sockets.append(self.sio)
        self.chat_id = 0
        self.connects = 0
        self.lock = threading.Lock()
        self.shown: list[int] = []  # every id shown, in arrival order, repeats included
        self.live: list[int] = []  # ids that came as message_received_from_current_chat
        self.newest = 0  # the newest id shown while in step with the server
        self.synced = True
        self.sio.on("connect", self._connected)
        self.sio.on("disconnect", self._dropped)
        self.sio.on("message_received_from_current_chat", self._current)
        self.sio.on("message_received_from_another_chat", self._listed)

    def _connected(self) -> None:
        self.connects += 1

    def _dropped(self, _reason: Any = None) -> None:
        with self.lock:
            self.synced = False

    def _show(self, ids: list[int]) -> None:
        with self.lock:
            self.shown.extend(ids)
            if self.synced and ids:
                self.newest = max(self.newest, *ids)

    def _current(self, data: dict[str, Any]) -> None:
        with self.lock:
            self.live.append(data["message"]["id"])
        self._show([data["message"]["id"]])

    def _listed(self, data: dict[str, Any]) -> None:
        if data["chat_id"] == self.chat_id:
            self._show([data["message"]["id"]])

    def connect(self) -> None:
        """Connect through nginx with the cookie of the person's real login."""
        self.person.connect_socket(self.sio)

    def open(self, chat_id: int, after_id: int | None = None) -> list[int]:
        """join_chat (a catch-up when ``after_id`` is given); the ids of the page."""
        self.chat_id = chat_id
        payload = {"chat_id": chat_id}
        if after_id is not None:
            payload["after_id"] = after_id
        page = self.sio.call("join_chat", payload, timeout=5)
        assert page["ok"], page
        ids = [message["id"] for message in page["messages"]]
        for _ in range(10):  # more arrived while the page was read: scroll down, as a reader
            if not page["has_more_after"]:
                break
            page = self.sio.call(
                "message_history_is_scrolled_to_the_bottom",
                {"chat_id": chat_id, "after_id": ids[-1]},
                timeout=5,
            )
            assert page["ok"], page
            ids += [message["id"] for message in page["messages"]]
        with self.lock:
            self.synced = True
        self._show(ids)
        return ids

    def catch_up(self) -> list[int]:
        """What the browser does after a reconnect: list_chats, then join_chat for only
        what came after the newest message it had before the drop."""
        listed = self.sio.call("list_chats", {}, timeout=5)
        assert any(chat["id"] == self.chat_id for chat in listed["chats"])
        return self.open(self.chat_id, after_id=self.newest or None)

    def send_until_acknowledged(self, body: str, deadline: float) -> dict[str, Any]:
        """Send with one client_id, again after each lost ack, as the browser's outbox does."""
        payload = {"chat_id": self.chat_id, "body": body, "client_id": new_id()}
        while time.monotonic() < deadline:
            if not self.sio.connected:
                time.sleep(0.05)
                continue
            try:
                ack = self.sio.call("message_sent", payload, timeout=2)
            except socketio.exceptions.SocketIOError:
                continue  # the worker died with the message in flight: send it again
            assert ack["ok"], ack
            return ack["message"]
        pytest.fail(f"{body!r} was never acknowledged", pytrace=False)


def test_clients_of_a_killed_worker_reconnect_through_nginx_and_miss_nothing(cluster, people):
    """alice and bob talk through nginx; their worker is killed with SIGKILL while alice
    keeps sending and carol, on the other worker, talks on. They reconnect through nginx
    to the other worker, catch up, and every acknowledged message is there exactly once,
    in order, for everyone."""
    alice = Reconnecting(people.register(cluster.front, "alice"), people)
    bob = Reconnecting(people.register(cluster.front, "bob"), people)
    alice.connect()
    bob.connect()
    home = cluster.worker_behind_nginx()
    other = next(worker for worker in cluster.workers if worker is not home)
    carol = people.register(other, "carol")
    carol.connect()
    channel = carol.call("create_channel", {"name": f"crash-{new_id()[:6]}"})["chat"]["id"]
    for person in (alice, bob):
        assert person.sio.call("join_channel", {"chat_id": channel}, timeout=5)["ok"]
        person.open(channel)
    carol.call("join_chat", {"chat_id": channel})

    acked: list[dict[str, Any]] = []
    failures: list[BaseException] = []
    deadline = time.monotonic() + 20

    def alice_talks() -> None:
        try:
            for n in range(12):
                acked.append(alice.send_until_acknowledged(f"alice {n}", deadline))
                time.sleep(0.05)
        except BaseException as error:  # reported by the test, not lost in the thread
            failures.append(error)

    talker = threading.Thread(target=alice_talks)
    talker.start()
    try:
        wait_for(lambda: len(acked) >= 4, "alice's first messages are acknowledged")
        home.crash()
        for n in range(4):  # carol talks on while alice and bob are away
            acked.append(send(carol, channel, f"carol while they were away {n}"))
        wait_for(lambda: alice.connects == 2 and bob.connects == 2, "both reconnect", timeout=10)
        assert cluster.worker_behind_nginx() is other, "nginx sends them to the live worker"
        catch_ups = {"alice": alice.catch_up(), "bob": bob.catch_up()}
        for n in range(3):
            acked.append(bob.send_until_acknowledged(f"bob after the crash {n}", deadline))
    finally:
        talker.join(timeout=25)
    assert not failures, failures
    assert not talker.is_alive()

    stored = cluster.front.query(
        "SELECT id, client_id FROM messages WHERE chat_id = ? ORDER BY id", (channel,)
    )
    assert len(stored) == len(acked) == 12 + 4 + 3
    assert sorted(m["id"] for m in acked) == [row["id"] for row in stored]
    assert sorted(m["client_id"] for m in acked) == sorted(row["client_id"] for row in stored)
    for sender in ("alice", "bob", "carol"):
        ids = [m["id"] for m in acked if m["body"].startswith(sender)]
        assert ids == sorted(ids), f"{sender}'s messages are stored in the order sent"
    for name, page in catch_ups.items():
        assert page == sorted(set(page)), f"{name}'s catch-up is in order, each message once"
    everything = {row["id"] for row in stored}
    for person in (alice, bob):
        own = {m["id"] for m in acked if m["body"].startswith(person.person.name.split("-")[0])}
        wait_for(
            lambda p=person, o=own: set(p.shown) | o == everything,
            f"{person.person.name} has every message of the chat",
        )
        assert len(person.live) == len(set(person.live)), "no message came live twice"
    assert {row["client_id"] for row in stored} == {m["client_id"] for m in acked}


# -- make cluster --------------------------------------------------------------------------


def test_make_cluster_starts_workers_behind_nginx_restarts_a_dead_one_and_stops_all(
    tmp_path: Path,
):
    """``deploy/cluster.py`` (make cluster): two workers on SQLite and nginx answer on the
    public port; a worker killed with SIGKILL is started again; SIGTERM stops everything."""
    if find_nginx() is None:
        skip_or_fail("nginx is not installed (Debian: apt-get install nginx; or set NGINX)")
    public, first = servers.free_port(), servers.free_port_run(2)
    output_path = tmp_path / "cluster.out"
    with redis_prefix() as prefix, output_path.open("wb") as output:
        env = {
            **os.environ,
            "HOST": "127.0.0.1",
            "PORT": str(public),
            "WORKERS": "2",
            "FIRST_WORKER_PORT": str(first),
            "CLUSTER_RUN_DIR": str(tmp_path / "run"),
            "REDIS_URL": TEST_REDIS_URL,
            "REDIS_PREFIX": prefix,
            "SECRET_KEY": secrets.token_hex(32),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'chat.db'}",
            "UPLOAD_FOLDER": str(tmp_path / "uploads"),
            "PYTHONUNBUFFERED": "1",
        }
        supervisor = subprocess.Popen(
            [sys.executable, "deploy/cluster.py"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, to clean up after a failure
        )

        def printed() -> str:
            return output_path.read_text(errors="replace")

        try:
            wait_for(
                lambda: "Stop with Ctrl+C" in printed() or supervisor.poll() is not None,
                "the cluster starts",
                timeout=45,
            )
            assert supervisor.poll() is None, printed()
            assert f"http://localhost:{public}/" in printed()
            assert answers(f"http://127.0.0.1:{public}/login")
            workers = dict(re.findall(r"Worker http://127\.0\.0\.1:(\d+)/ +pid (\d+)", printed()))
            assert sorted(workers) == [str(first), str(first + 1)], printed()

            os.kill(int(workers[str(first)]), signal.SIGKILL)
            wait_for(lambda: "starting it again" in printed(), "the dead worker is noticed")
            wait_for(
                lambda: answers(f"http://127.0.0.1:{first}/login"),
                "the dead worker answers again",
                timeout=20,
            )

            supervisor.send_signal(signal.SIGTERM)
            assert supervisor.wait(timeout=20) == 0, printed()
            for port in (public, first, first + 1):
                assert not answers(f"http://127.0.0.1:{port}/login"), f"{port} still answers"
        finally:
            if supervisor.poll() is None:
                os.killpg(supervisor.pid, signal.SIGKILL)
                supervisor.wait()


# -- 8. an admin on one worker deactivates someone connected to the other ------------------


def test_deactivation_closes_the_persons_sockets_on_every_worker(cluster, people):
    """bob has a socket on each worker; an admin deactivates him through worker 2: both
    sockets close at once, and neither worker lets him back in."""
    first, second = cluster.workers
    admin = people.register(second, "admin")
    database = Database(cluster.settings["DATABASE_URL"], str(ROOT), pool_size=1)
    try:
        connection = database.connect()
        with connection.transaction():
            connection.execute("UPDATE users SET role = 'admin' WHERE id = ?", (admin.id,))
        database.release(connection)
    finally:
        database.close()
    bob = people.register(first, "bob")
    bob_on_second = people.on(bob, second)
    bob.connect()
    bob_on_second.connect()
    token = csrf_token(admin.http.get(f"{second.url}/admin").text)
    response = admin.http.post(
        f"{second.url}/admin/users/{bob.id}/deactivate",
        data={"csrf_token": token},
        allow_redirects=False,
    )
    assert response.status_code == 303, response.text[:300]
    wait_for(lambda: not bob.sio.connected, "worker 1 closes bob's socket")
    wait_for(lambda: not bob_on_second.sio.connected, "worker 2 closes bob's socket")
    assert bob.received("logged_out")
    for worker in (first, second):
        assert open_page(bob.http, f"{worker.url}/chats").status_code == 302


def test_an_invitation_and_a_leaving_reach_sockets_on_the_other_worker(cluster, people):
    """alice invites bob, whose sockets are on both workers, into a private channel: both
    join its room at once; he leaves through worker 1, and his socket on worker 2 hears no
    more of it."""
    first, second = cluster.workers
    alice = people.register(first, "alice")
    bob = people.register(first, "bob")
    bob_on_second = people.on(bob, second)
    for person in (alice, bob, bob_on_second):
        person.connect()
    name = f"inner-{new_id()[:6]}"
    channel = alice.call("create_channel", {"name": name, "private": True})["chat"]["id"]
    assert alice.call("invite_to_channel", {"chat_id": channel, "user_id": bob.id}) == {"ok": True}
    for socket in (bob, bob_on_second):
        wait_for(
            lambda s=socket: any(a["chat"]["id"] == channel for a in s.received("chat_added")),
            f"{socket.server.url} tells bob he is in the channel",
        )
    hello = send(alice, channel, "welcome, bob")
    for socket in (bob, bob_on_second):
        wait_for(
            lambda s=socket: (
                {"chat_id": channel, "message": hello}
                in s.received("message_received_from_another_chat")
            ),
            f"bob's socket on {socket.server.url} is in the channel's room",
        )

    assert bob.call("leave_channel", {"chat_id": channel}) == {"ok": True}
    wait_for(
        lambda: {"chat_id": channel} in bob_on_second.received("chat_left"),
        "worker 2 tells bob's other socket he left",
    )
    after = send(alice, channel, "after bob left")
    marker = send(alice, open_direct_chat(alice, bob), "a direct message after that")
    wait_for(
        lambda: any(
            e["message"] == marker for e in bob_on_second.received("new_user_sent_message")
        ),
        "bob's socket on worker 2 gets what came after",
    )
    for socket in (bob, bob_on_second):
        assert all(
            e["message"]["id"] != after["id"]
            for e in socket.received("message_received_from_another_chat")
        ), "nothing of the channel reaches bob after he left"
