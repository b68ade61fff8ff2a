"""Who is online: distinct users with an open socket, live for everyone, with expiry."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from broadcast import OnlineCount
from presence import LocalPresence, PresenceTracker, RedisPresence
from tests.conftest import Clock, received, register
from tests.redis_server import TEST_REDIS_URL, redis_client, redis_prefix


def presence_events(tab):
    return [
        (e["name"], e["args"][0])
        for e in tab.get_received()
        if e["name"] in {"presence_updated", "online_users_updated"}
    ]


def test_a_user_coming_online_is_announced_to_their_partners_and_the_count_to_everyone(
    alice, bob, carol
):
    alice.direct_chat_with(bob)
    alice.open_tab()
    carol.open_tab()
    alice.tab.get_received()
    carol.tab.get_received()
    bob.open_tab()
    assert presence_events(alice.tab) == [
        ("presence_updated", {"user_id": bob.id, "online": True}),
        ("online_users_updated", {"count": 3}),
    ]
    # carol has no direct chat with bob: no dot of his to update, only the count.
    assert presence_events(carol.tab) == [("online_users_updated", {"count": 3})]


def test_three_tabs_count_once_and_offline_only_when_the_last_closes(alice, bob):
    alice.direct_chat_with(bob)
    alice.open_tab()
    tabs = [bob.open_tab() for _ in range(3)]
    alice.tab.get_received()
    assert alice.call("list_chats")["online_count"] == 2
    tabs[0].disconnect()
    tabs[1].disconnect()
    assert presence_events(alice.tab) == []
    assert alice.call("list_chats")["online_count"] == 2
    tabs[2].disconnect()
    assert presence_events(alice.tab) == [
        ("presence_updated", {"user_id": bob.id, "online": False}),
        ("online_users_updated", {"count": 1}),
    ]


def test_a_new_tab_of_an_online_user_gets_the_count(alice, bob):
    alice.open_tab()
    bob.open_tab()
    second = alice.open_tab()
    assert presence_events(second) == [("online_users_updated", {"count": 2})]


def test_a_crowd_coming_online_gets_the_count_once_an_interval_not_once_each(app):
    """Nine people connect within the interval: the first one's count goes out at once,
    the other eight as one count at the end of the interval, the count of that moment."""
    from app import socketio

    clock = Clock()
    scheduled: list[tuple[float, Callable[[], None]]] = []
    app.extensions["online_count"] = OnlineCount(
        socketio,
        app.extensions["presence"].store.online_count,
        interval=0.5,
        clock=clock,
        later=lambda wait, then: scheduled.append((clock.now + wait, then)),
    )

    def log_in(name):
        http = app.test_client()
        assert register(http, name).status_code == 303
        return http

    watcher = socketio.test_client(app, flask_test_client=log_in("watcher"))
    crowd = [log_in(f"person{n}") for n in range(9)]
    clock.now += 0.6  # a quiet interval
    watcher.get_received()
    tabs = [socketio.test_client(app, flask_test_client=http) for http in crowd]
    assert [data["count"] for data in counts(watcher)] == [2]
    assert [due for due, _ in scheduled] == [clock.now + 0.5], "one count at the interval's end"
    clock.now, send = scheduled.pop()
    send()
    assert [data["count"] for data in counts(watcher)] == [10]
    for tab in [watcher, *tabs]:
        tab.disconnect()


def counts(tab):
    return received(tab, "online_users_updated")


def test_direct_chats_say_whether_the_partner_is_online(alice, bob, carol):
    with_bob = alice.direct_chat_with(bob)
    with_carol = alice.direct_chat_with(carol)
    bob.open_tab()
    chats = {c["id"]: c for c in alice.call("list_chats")["chats"]}
    assert chats[with_bob]["partner_online"] is True
    assert chats[with_carol]["partner_online"] is False
    assert received(alice.tab, "chat_added") == []


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture(params=["local", "redis"])
def make_store(request, clock):
    """``make_store(ttl)``: each kind of presence store, on a fake clock."""
    if request.param == "local":
        yield lambda ttl: LocalPresence(ttl=ttl, clock=clock)
        return
    with redis_prefix() as prefix:
        yield lambda ttl: RedisPresence(redis_client(), prefix, ttl=ttl, clock=clock)


def test_entries_expire_when_nobody_refreshes_them(make_store, clock):
    """A worker that died stops refreshing: its users go offline after the TTL."""
    store = make_store(60)
    assert store.add(1, "a") is True
    assert store.add(1, "b") is False
    assert store.add(2, "c") is True
    clock.now += 59
    assert store.sweep() == []
    assert store.online_count() == 2
    clock.now += 2
    assert sorted(store.sweep()) == [1, 2]
    assert store.online_count() == 0
    assert store.online_among([1, 2]) == set()


def test_a_live_workers_heartbeat_keeps_its_users_online(make_store, clock):
    store = make_store(60)
    alive = PresenceTracker(store)
    alive.connected(1, "a")
    store.add(2, "from-a-dead-worker")
    for _ in range(5):
        clock.now += 30
        gone = alive.heartbeat()
    assert gone == [] and store.online_among([1, 2]) == {1}
    assert alive.disconnected(1, "a") is True
    assert store.online_count() == 0


def test_removing_an_unknown_socket_changes_nothing(make_store):
    store = make_store(60)
    store.add(1, "a")
    assert store.remove(1, "zzz") is False
    assert store.remove(9, "a") is False
    assert store.online_count() == 1


def test_a_user_with_sockets_on_two_workers_goes_offline_with_the_last(make_store, clock):
    store = make_store(60)
    first, second = PresenceTracker(store), PresenceTracker(store)
    assert first.connected(7, "a", "session-1") is True
    assert second.connected(7, "b", "session-1") is False
    assert sorted(store.sockets_of_session("session-1")) == ["a", "b"]
    assert first.disconnected(7, "a") is False
    assert store.online_count() == 1
    assert second.disconnected(7, "b") is True
    assert store.online_count() == 0
    assert store.sockets_of_session("session-1") == []


def test_only_one_worker_announces_an_expired_user(make_store, clock):
    store = make_store(10)
    dead, alive_a, alive_b = PresenceTracker(store), PresenceTracker(store), PresenceTracker(store)
    dead.connected(3, "x")
    clock.now += 11
    assert alive_a.heartbeat() + alive_b.heartbeat() == [3]


def test_live_sockets_come_back_after_the_shared_store_lost_them(clock):
    """Redis keeps nothing on disk here: after a restart the next heartbeat restores the
    sockets a live worker still holds."""
    with redis_prefix() as prefix:
        store = RedisPresence(redis_client(), prefix, ttl=60, clock=clock)
        worker = PresenceTracker(store)
        worker.connected(5, "alive")
        store.redis.delete(*store.redis.scan_iter(f"{prefix}*"))  # the restart
        assert store.online_count() == 0
        assert worker.heartbeat() == []
        assert store.online_among([5]) == {5}


def test_a_sessions_sockets_are_listed_in_redis_as_long_as_the_session_lasts(make_app):
    """The list of a login session's sockets expires with the session itself
    (``PERMANENT_SESSION_LIFETIME``), not after a number of its own."""
    with redis_prefix() as prefix:
        redis_client()  # reachable, or skipped (failed under CI)
        app = make_app(
            REDIS_URL=TEST_REDIS_URL,
            REDIS_PREFIX=prefix,
            PERMANENT_SESSION_LIFETIME=1234,
        )
        store = app.extensions["presence"].store
        assert store.session_lifetime == 1234
        store.add(7, "socket", session_key="abc")
        assert 0 < store.redis.ttl(f"{prefix}:presence:session:abc") <= 1234
