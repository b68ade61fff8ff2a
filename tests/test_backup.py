"""Backup and restore (backup.py): ``flask backup`` copies a running chat's database and
uploads into one owner-only archive; ``flask restore`` puts it back into an empty
installation only, after checking every file against the manifest; scheduled backups keep
the newest few. Each test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import io
import json
import os
import stat
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

import backup
import database
from app import create_app
from bench import servers
from tests.conftest import make_config, query
from tests.live_server import ROOT, LiveServer, RealClient, csrf_token, start_server, wait_for
from tests.postgres import postgres_schema
from tests.test_attachments import PNG, picture, upload

TEXT = "Grüße — a note\n".encode()
GENERAL = 1


@pytest.fixture
def other_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """A second empty database of the same kind as ``database_url``."""
    if database_url.startswith("sqlite:"):
        yield f"sqlite:///{tmp_path / 'other.db'}"
        return
    with postgres_schema() as url:
        yield url


@pytest.fixture
def make_installation(tmp_path: Path) -> Iterator[Any]:
    """``make_installation(url, name)``: an app on ``url`` keeping its files under
    ``tmp_path/name``; its connections closed at the end."""
    apps: list[Flask] = []

    def make(url: str, name: str) -> Flask:
        built = create_app(make_config(tmp_path / name, DATABASE_URL=url))
        apps.append(built)
        return built

    yield make
    for built in apps:
        built.extensions["database"].close()


def run_cli(app: Flask, *args: str) -> Any:
    """``flask <args>`` on this app; the click result (exit code, output)."""
    return app.test_cli_runner().invoke(args=list(args))


def contents(app: Flask) -> dict[str, Any]:
    """What a user of the installation would find: people, messages, files by name."""
    folder = Path(app.config["UPLOAD_PATH"])
    return {
        "users": sorted(row["username"] for row in query(app, "SELECT username FROM users")),
        "messages": sorted(
            (row["client_id"], row["body"])
            for row in query(app, "SELECT client_id, body FROM messages")
        ),
        "files": {p.name: p.read_bytes() for p in sorted(folder.iterdir())}
        if folder.exists()
        else {},
    }


@pytest.fixture
def used_app(make_installation: Any, make_user: Any, app: Flask) -> Flask:
    """The ``app`` fixture's chat with alice, bob, their messages, a picture and a text."""
    alice, bob = make_user("alice"), make_user("bob")
    chat_id = alice.direct_chat_with(bob)
    alice.send(chat_id, "hello bob")
    bob.send(chat_id, "hello alice")
    alice.send(GENERAL, "hello everyone")
    assert upload(alice, chat_id, "pic.png", PNG, client_id="up-1").status_code == 201
    assert upload(bob, GENERAL, "notes.txt", TEXT, client_id="up-2").status_code == 201
    return app


def newest_version(dialect: str) -> int:
    """The newest schema version of the schema file of ``dialect``."""
    sections = database.schema_versions(database.SCHEMA_FILES[dialect].read_text())
    return max(version for version, _sql in sections)


def test_an_archive_restores_everything_into_an_empty_installation(
    used_app, make_installation, other_url, tmp_path
):
    archive = tmp_path / "out" / "chat.tar.gz"
    result = run_cli(used_app, "backup", str(archive))
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    assert [p.name for p in archive.parent.iterdir()] == ["chat.tar.gz"], "no temporary left"
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        manifest = json.load(tar.extractfile("manifest.json"))
    assert manifest["format"] == backup.FORMAT_VERSION
    assert manifest["schema_version"] == newest_version(manifest["database"])
    assert manifest["database"] == used_app.extensions["database"].dialect
    assert {entry["name"] for entry in manifest["files"]} | {"manifest.json"} == set(names)
    # Two uploads: the picture, its thumbnail and the text; never the key or a session.
    assert len([n for n in names if n.startswith("uploads/")]) == 3
    assert not any("secret" in n or "session" in n for n in names)

    restored = make_installation(other_url, "restored")
    result = run_cli(restored, "restore", str(archive))
    assert result.exit_code == 0, result.output
    assert contents(restored) == contents(used_app)
    assert len(contents(restored)["messages"]) == 5
    folder = Path(restored.config["UPLOAD_PATH"])
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in folder.iterdir())
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert [p.name for p in folder.parent.iterdir() if p.name.startswith(".restore")] == []


def test_restore_refuses_an_installation_that_is_not_empty_unless_forced(
    used_app, make_installation, other_url, tmp_path
):
    archive = tmp_path / "chat.tar.gz"
    assert run_cli(used_app, "backup", str(archive)).exit_code == 0
    target = make_installation(other_url, "target")
    with target.app_context():
        import db_commands

        carol = db_commands.insert_user("carol", "x", "General Talk")
        db_commands.insert_message(GENERAL, carol, "carol was here", "carol-1")
    before = contents(target)

    refused = run_cli(target, "restore", str(archive))
    assert refused.exit_code == 1
    assert "This installation is not empty (it has users or messages)" in refused.output
    assert "--force" in refused.output
    assert contents(target) == before

    forced = run_cli(target, "restore", "--force", str(archive))
    assert forced.exit_code == 0, forced.output
    assert contents(target) == contents(used_app)
    assert "carol" not in contents(target)["users"]


def test_uploaded_files_alone_make_an_installation_not_empty(
    used_app, make_installation, other_url, tmp_path
):
    archive = tmp_path / "chat.tar.gz"
    assert run_cli(used_app, "backup", str(archive)).exit_code == 0
    target = make_installation(other_url, "target")
    (Path(target.config["UPLOAD_PATH"]) / "0123abcd.txt").write_bytes(b"someone's file")
    refused = run_cli(target, "restore", str(archive))
    assert refused.exit_code == 1 and "it has uploaded files" in refused.output
    assert contents(target)["users"] == []


def rewritten(archive: Path, out: Path, change: dict[str, bytes]) -> Path:
    """A copy of ``archive`` with some members' bytes replaced and the manifest kept."""
    with tarfile.open(archive) as source, tarfile.open(out, "w:gz") as target:
        for info in source:
            data = source.extractfile(info).read()
            data = change.get(info.name, data)
            info.size = len(data)
            target.addfile(info, io.BytesIO(data))
    return out


def test_a_damaged_archive_is_refused_and_changes_nothing(
    used_app, make_installation, other_url, tmp_path
):
    archive = tmp_path / "chat.tar.gz"
    assert run_cli(used_app, "backup", str(archive)).exit_code == 0
    with tarfile.open(archive) as tar:
        text_member = next(
            n for n in tar.getnames() if n.startswith("uploads/") and n.endswith(".txt")
        )
        text = tar.extractfile(text_member).read()
    damaged = rewritten(archive, tmp_path / "damaged.tar.gz", {text_member: text[:-1] + b"?"})
    # Into an installation in use, with --force: the check comes before anything is touched.
    target = make_installation(other_url, "target")
    with target.app_context():
        import db_commands

        carol = db_commands.insert_user("carol", "x", "General Talk")
        db_commands.insert_message(GENERAL, carol, "carol was here", "carol-1")
    (Path(target.config["UPLOAD_PATH"]) / "0123abcd.txt").write_bytes(b"carol's file")
    before = contents(target)

    result = run_cli(target, "restore", "--force", str(damaged))
    assert result.exit_code == 1
    assert f"Checksum mismatch for {text_member}" in result.output
    assert contents(target) == before

    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    result = run_cli(target, "restore", "--force", str(cut))
    assert result.exit_code == 1 and "is not a readable backup archive" in result.output
    assert contents(target) == before
    leftovers = [p for p in Path(target.config["UPLOAD_PATH"]).parent.iterdir()]
    assert not [p for p in leftovers if p.name.startswith(".restore")]


@pytest.mark.parametrize(
    "entry",
    [
        tarfile.TarInfo("uploads/../../escaped.txt"),
        tarfile.TarInfo("/tmp/absolute.txt"),
        tarfile.TarInfo("secret_key"),
    ],
    ids=["parent-path", "absolute-path", "unexpected-file"],
)
def test_an_archive_with_a_crafted_entry_is_refused(
    used_app, make_installation, other_url, tmp_path, entry
):
    archive = tmp_path / "chat.tar.gz"
    assert run_cli(used_app, "backup", str(archive)).exit_code == 0
    crafted = tmp_path / "crafted.tar.gz"
    with tarfile.open(archive) as source, tarfile.open(crafted, "w:gz") as target:
        entry.size = 4
        target.addfile(entry, io.BytesIO(b"evil"))
        for info in source:
            target.addfile(info, source.extractfile(info))
    target_app = make_installation(other_url, "target")
    result = run_cli(target_app, "restore", str(crafted))
    assert result.exit_code == 1 and "The archive holds an unexpected entry" in result.output
    assert contents(target_app)["users"] == [] and contents(target_app)["files"] == {}
    assert not list(tmp_path.rglob("escaped.txt"))


def test_a_symbolic_link_in_an_archive_is_refused(used_app, make_installation, other_url, tmp_path):
    archive = tmp_path / "chat.tar.gz"
    assert run_cli(used_app, "backup", str(archive)).exit_code == 0
    crafted = tmp_path / "crafted.tar.gz"
    with tarfile.open(archive) as source, tarfile.open(crafted, "w:gz") as target:
        for info in source:
            target.addfile(info, source.extractfile(info))
        link = tarfile.TarInfo("uploads/0123abcd.txt")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        target.addfile(link)
    target_app = make_installation(other_url, "target")
    result = run_cli(target_app, "restore", str(crafted))
    assert result.exit_code == 1 and "unexpected entry: 'uploads/0123abcd.txt'" in result.output
    assert contents(target_app)["files"] == {}


def test_a_restore_whose_database_swap_fails_leaves_the_installation_as_it_was(
    used_app, make_installation, other_url, tmp_path, monkeypatch
):
    archive = tmp_path / "chat.tar.gz"
    assert run_cli(used_app, "backup", str(archive)).exit_code == 0
    target = make_installation(other_url, "target")
    with target.app_context():
        import db_commands

        carol = db_commands.insert_user("carol", "x", "General Talk")
    (Path(target.config["UPLOAD_PATH"]) / "0123abcd.txt").write_bytes(b"carol's file")
    before = contents(target)

    def broken(*args: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(backup, "_swap_sqlite", broken)
    monkeypatch.setattr(backup, "_swap_postgresql", broken)
    result = run_cli(target, "restore", "--force", str(archive))
    assert result.exit_code == 1 and isinstance(result.exception, OSError)
    assert contents(target) == before
    assert carol


def test_an_archive_of_an_older_schema_is_upgraded_when_restored(
    make_installation, database_url, other_url, tmp_path, monkeypatch
):
    dialect = database.dialect_of(database_url)
    newest = database.SCHEMA_FILES[dialect]
    sections = database.schema_versions(newest.read_text())
    older = tmp_path / "older.sql"
    older.write_text("".join(f"-- version: {n}\n{sql}" for n, sql in sections if n <= 4))
    monkeypatch.setitem(database.SCHEMA_FILES, dialect, older)
    old_app = make_installation(database_url, "old")
    query_ = "INSERT INTO users (username, password_hash, created_at) VALUES (?, 'x', 1)"
    with old_app.app_context():
        import db_commands

        db = db_commands.get_db()
        db.execute(query_, ("alice",))
        db.execute(
            "INSERT INTO chat_members (chat_id, user_id, joined_at) VALUES (1, 1, 5)",
        )
        db.execute(
            "INSERT INTO messages (chat_id, sender_id, body, created_at, client_id)"
            " VALUES (1, 1, 'from version 4', 2, 'old-1')"
        )
    archive = tmp_path / "old.tar.gz"
    assert run_cli(old_app, "backup", str(archive)).exit_code == 0
    monkeypatch.setitem(database.SCHEMA_FILES, dialect, newest)
    with tarfile.open(archive) as tar:
        assert json.load(tar.extractfile("manifest.json"))["schema_version"] == 4

    restored = make_installation(other_url, "restored")
    result = run_cli(restored, "restore", str(archive))
    assert result.exit_code == 0, result.output
    assert contents(restored)["messages"] == [("old-1", "from version 4")]
    with restored.app_context():
        import db_commands

        assert db_commands.get_schema_version(db_commands.get_db()) == newest_version(dialect)
    # Version 5's column, filled in by its upgrade: alice joined before the old message.
    rows = query(restored, "SELECT joined_after_message_id AS n FROM chat_members")
    assert [row["n"] for row in rows] == [0]


def test_an_archive_of_the_other_database_kind_is_refused(
    used_app, make_installation, database_url, tmp_path
):
    archive = tmp_path / "chat.tar.gz"
    assert run_cli(used_app, "backup", str(archive)).exit_code == 0
    with contextlib.ExitStack() as stack:
        if database_url.startswith("sqlite:"):
            other_kind = stack.enter_context(postgres_schema())
        else:
            other_kind = f"sqlite:///{tmp_path / 'other.db'}"
        target = make_installation(other_kind, "target")
        result = run_cli(target, "restore", str(archive))
        assert result.exit_code == 1 and "Restore it into an installation of the same kind" in (
            result.output
        )
        assert contents(target)["users"] == []


# -- scheduled backups ------------------------------------------------------------------------


def test_a_scheduled_backup_is_taken_only_when_due_and_by_one_process(app, tmp_path):
    db, uploads = app.extensions["database"], Path(app.config["UPLOAD_PATH"])
    folder = tmp_path / "backups"
    moment = datetime.datetime(2026, 1, 1, 12, tzinfo=datetime.UTC)
    clock = lambda: moment  # noqa: E731
    first = backup.do_scheduled_backup(db, uploads, folder, 3600, 3, now=clock)
    assert first is not None and first.exists()
    assert backup.do_scheduled_backup(db, uploads, folder, 3600, 3, now=clock) is None
    moment += datetime.timedelta(minutes=59)
    assert backup.do_scheduled_backup(db, uploads, folder, 3600, 3, now=clock) is None
    moment += datetime.timedelta(minutes=1)
    # Another worker holds the folder's lock: this one takes nothing.
    with (folder / backup.LOCK_FILE).open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        assert backup.do_scheduled_backup(db, uploads, folder, 3600, 3, now=clock) is None
    if db.dialect == "postgresql":  # a worker on another machine holds the database's lock
        other = database.Database(db.url, "/", pool_size=1)
        conn = other.connect()
        try:
            import db_commands

            assert db_commands.do_try_advisory_lock(conn, backup.BACKUP_LOCK_KEY)
            assert backup.do_scheduled_backup(db, uploads, folder, 3600, 3, now=clock) is None
            # Given back before closing: a closed session's locks go only once the server has
            # ended its backend, which may come after the next attempt.
            db_commands.do_advisory_unlock(conn, backup.BACKUP_LOCK_KEY)
        finally:
            conn.raw.close()
            other.close()
    second = backup.do_scheduled_backup(db, uploads, folder, 3600, 3, now=clock)
    assert second is not None and backup.list_scheduled(folder) == [first, second]
    for _ in range(3):
        moment += datetime.timedelta(hours=1)
        backup.do_scheduled_backup(db, uploads, folder, 3600, 3, now=clock)
    kept = backup.list_scheduled(folder)
    assert len(kept) == 3 and first not in kept and second not in kept
    assert kept[-1].name == backup.scheduled_name(moment)


# -- real servers under load --------------------------------------------------------------


def settings_for(folder: Path, database_url: str | None) -> dict[str, str]:
    """The settings of a chat keeping its files under ``folder`` (its data too, or in
    ``database_url``): what the server runs with, and what an administrator's ``flask``
    command is given."""
    extra = {"DATABASE_URL": database_url} if database_url else {}
    return {**servers.data_settings(folder), **extra}


@contextlib.contextmanager
def a_server(folder: Path, database_url: str | None) -> Iterator[LiveServer]:
    extra = {"DATABASE_URL": database_url} if database_url else {}
    server = start_server(folder, SEND_RATE_LIMIT="1000 per second", **extra)
    try:
        yield server
    finally:
        server.stop()


def flask_command(settings: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``flask <args>`` in a process of its own with a chat's settings."""
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", *args],
        cwd=ROOT,
        env={**os.environ, **settings},
        capture_output=True,
        text=True,
        timeout=300,
    )


def upload_over_http(server: LiveServer, person: RealClient, name: str, data: bytes) -> dict:
    token = csrf_token(person.http.get(f"{server.url}/chats").text)
    response = person.http.post(
        f"{server.url}/upload",
        data={"chat_id": str(GENERAL), "client_id": uuid.uuid4().hex},
        files={"file": (name, data)},
        headers={"X-CSRFToken": token, "Accept": "application/json"},
        timeout=60,
    )
    assert response.status_code == 201, response.text
    return response.json()["message"]


def stored_messages(database_url: str) -> set[tuple[str, str]]:
    """Every message of a database, as (client_id, body)."""
    db = database.Database(database_url, str(ROOT), pool_size=1)
    conn = db.connect()
    try:
        rows = conn.all("SELECT client_id, body FROM messages")
    finally:
        db.release(conn)
        db.close()
    return {(row["client_id"], row["body"]) for row in rows}


@pytest.fixture(params=["sqlite", "postgresql"])
def two_databases(request: pytest.FixtureRequest) -> Iterator[tuple[str | None, str | None]]:
    """Where the used chat and the restored one keep their data: None for SQLite files in
    their folders, else two PostgreSQL schemas."""
    if request.param == "sqlite":
        yield None, None
        return
    with postgres_schema() as first, postgres_schema() as second:
        yield first, second


@pytest.mark.slow
def test_a_backup_under_load_restores_every_acknowledged_message_and_upload(
    two_databases, tmp_path
):
    """Three people send without pause while ``flask backup`` runs in its own process;
    every message acknowledged before it started, and every upload, byte for byte, comes
    back in a new installation, which then starts and serves them."""
    used_url, restored_url = two_databases
    used, restored = tmp_path / "used", tmp_path / "restored"
    archive = tmp_path / "chat.tar.gz"
    files = {
        "pic.png": PNG,
        "photo.jpg": picture("JPEG", (900, 700)),
        "notes.txt": TEXT,
        "paper.pdf": b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n",
    }
    acked: list[tuple[float, str, str]] = []  # (when its ack arrived, client_id, body)
    with a_server(used, used_url) as server:
        clients = [RealClient(server, name).register() for name in ("alice", "bob", "carol")]
        for client in clients:
            client.connect()
        uploaded = {
            name: upload_over_http(server, clients[n % 3], name, data)
            for n, (name, data) in enumerate(files.items())
        }
        stop = threading.Event()
        failures: list[BaseException] = []

        def keep_sending(client: RealClient) -> None:
            try:
                n = 0
                while not stop.is_set():
                    client_id, body = uuid.uuid4().hex, f"{client.name} says {n}"
                    ack = client.call(
                        "message_sent", {"chat_id": GENERAL, "body": body, "client_id": client_id}
                    )
                    assert ack["ok"], ack
                    acked.append((time.monotonic(), client_id, body))
                    n += 1
            except BaseException as error:
                failures.append(error)

        senders = [threading.Thread(target=keep_sending, args=(c,)) for c in clients]
        for sender in senders:
            sender.start()
        try:
            wait_for(lambda: len(acked) >= 100, "100 messages acknowledged", timeout=60)
            began = time.monotonic()
            done = flask_command(settings_for(used, used_url), "backup", str(archive))
            finished = time.monotonic()
            wait_for(
                lambda: any(when > finished for when, _, _ in acked), "a message after the backup"
            )
        finally:
            stop.set()
            for sender in senders:
                sender.join(30)
        assert not failures, failures
        assert done.returncode == 0, done.stdout + done.stderr
        sent_during = [a for a in acked if began <= a[0] <= finished]
        assert sent_during, "the backup ran while messages were being written"
        for client in clients:
            client.disconnect()
    before = {(client_id, body) for when, client_id, body in acked if when < began}
    assert len(before) >= 100
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600

    # A new installation, started once and stopped; then the archive goes in.
    with a_server(restored, restored_url):
        pass
    done = flask_command(settings_for(restored, restored_url), "restore", str(archive))
    assert done.returncode == 0, done.stdout + done.stderr
    rows = stored_messages(restored_url or f"sqlite:///{restored / 'chat.db'}")
    assert before <= rows, f"{len(before - rows)} acknowledged messages are missing"
    assert rows <= stored_messages(used_url or f"sqlite:///{used / 'chat.db'}")
    kept = {p.name: p.read_bytes() for p in (used / "uploads").iterdir()}
    assert {p.name: p.read_bytes() for p in (restored / "uploads").iterdir()} == kept
    assert len(kept) == 6  # four files and the two pictures' thumbnails

    with a_server(restored, restored_url) as again:
        alice = RealClient(again, "alice").login()
        for name, message in uploaded.items():
            got = alice.http.get(again.url + message["attachment"]["url"])
            assert got.status_code == 200 and got.content == files[name], name
        alice.connect()
        history = alice.call("join_chat", {"chat_id": GENERAL})
        shown = {(m["client_id"], m["body"]) for m in history["messages"]}
        assert shown and shown <= rows
        new = alice.call(
            "message_sent", {"chat_id": GENERAL, "body": "after the restore", "client_id": "x-1"}
        )
        assert new["ok"], new
        assert new["message"]["id"] > max(m["id"] for m in history["messages"])
        alice.disconnect()


@pytest.mark.slow
def test_a_running_chat_takes_backups_on_its_schedule_and_keeps_the_last_ones(tmp_path):
    """``python app.py`` with a backup every 1.8 s, the last 2 kept: archives appear, the
    older ones go, each is whole; the chat answers its users meanwhile."""
    folder = tmp_path / "backups"
    server = start_server(
        tmp_path / "chat",
        BACKUP_DIR=str(folder),
        BACKUP_EVERY_HOURS="0.0005",
        BACKUP_KEEP="2",
        SEND_RATE_LIMIT="1000 per second",
    )
    try:
        alice = RealClient(server, "alice").register()
        alice.connect()
        upload_over_http(server, alice, "pic.png", PNG)
        seen: set[str] = set()

        def kept_the_last_two_of_four() -> bool:
            names = [p.name for p in backup.list_scheduled(folder)]
            seen.update(names)
            return len(seen) >= 4 and names == sorted(seen)[-2:]

        sent, deadline = 0, time.monotonic() + 120  # bounds a failure only
        while not kept_the_last_two_of_four():
            ack = alice.call(
                "message_sent", {"chat_id": GENERAL, "body": f"m{sent}", "client_id": f"m{sent}"}
            )
            assert ack["ok"], ack
            sent += 1
            assert time.monotonic() < deadline, f"never kept the last two of four: {sorted(seen)}"
            time.sleep(0.02)
        alice.disconnect()
        assert "Scheduled backup failed" not in server.log_tail(200)
    finally:
        server.stop()
    for archive in backup.list_scheduled(folder):
        assert stat.S_IMODE(archive.stat().st_mode) == 0o600
        with tempfile.TemporaryDirectory() as staging:
            manifest = backup.unpack_archive(archive, Path(staging))
        assert len(manifest["files"]) == 3  # the database, the picture, its thumbnail
