-- The chat's schema, in versions. Each "-- version: N" section upgrades a database whose
-- PRAGMA user_version is N-1; db_commands.init_db applies the missing sections in order,
-- each in its own transaction, so an old database upgrades in place and nothing is lost.
-- Never edit a released section: add a new one.

-- version: 1
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,          -- ms since the epoch, UTC
    last_chat_id INTEGER REFERENCES chats (id) ON DELETE SET NULL
);

CREATE TABLE chats (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('direct', 'channel')),
    name TEXT UNIQUE COLLATE NOCASE,      -- channels only
    direct_key TEXT UNIQUE,               -- direct chats only: "<low user id>:<high user id>"
    created_by INTEGER REFERENCES users (id) ON DELETE SET NULL,
    created_at INTEGER NOT NULL,
    last_message_id INTEGER,              -- newest message, kept with each insert
    CHECK ((kind = 'channel' AND name IS NOT NULL AND direct_key IS NULL)
        OR (kind = 'direct' AND direct_key IS NOT NULL AND name IS NULL))
);

CREATE TABLE chat_members (
    chat_id INTEGER NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    last_read_message_id INTEGER NOT NULL DEFAULT 0,
    joined_at INTEGER NOT NULL,
    PRIMARY KEY (chat_id, user_id)
) WITHOUT ROWID;

CREATE INDEX chat_members_by_user ON chat_members (user_id, chat_id);

CREATE TABLE attachments (
    id INTEGER PRIMARY KEY,
    chat_id INTEGER NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    uploader_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    original_name TEXT NOT NULL,
    stored_name TEXT NOT NULL UNIQUE,
    mime_type TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    chat_id INTEGER NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    sender_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    body TEXT NOT NULL,
    attachment_id INTEGER REFERENCES attachments (id),
    created_at INTEGER NOT NULL,
    client_id TEXT NOT NULL,
    UNIQUE (sender_id, client_id)
);

-- Every page of history is a range scan on this index, however deep it is.
CREATE INDEX messages_by_chat ON messages (chat_id, id);

INSERT INTO chats (kind, name, created_at)
VALUES ('channel', 'General Talk', CAST(strftime('%s', 'now') AS INTEGER) * 1000);

-- version: 2
-- Pictures keep their size, so the browser reserves their space before they load and the
-- conversation does not jump.
ALTER TABLE attachments ADD COLUMN width INTEGER;
ALTER TABLE attachments ADD COLUMN height INTEGER;

-- version: 3
-- Names are unique ignoring case through lower(), the expression PostgreSQL indexes too,
-- so one set of queries serves both databases.
CREATE UNIQUE INDEX users_by_lower_name ON users (lower(username));
CREATE UNIQUE INDEX channels_by_lower_name ON chats (lower(name));

-- version: 4
-- A chat's last message moves with each message stored, inside the INSERT itself: a text
-- message is one statement (its own transaction) instead of BEGIN, INSERT, UPDATE, COMMIT.
-- max() keeps the newest even if two writers ever finished out of order.
CREATE TRIGGER messages_move_last_message AFTER INSERT ON messages
BEGIN
    UPDATE chats SET last_message_id = max(coalesce(last_message_id, 0), NEW.id)
    WHERE id = NEW.chat_id;
END;

-- version: 5
-- The chat list is ordered by message ids, never by clocks: joining a chat is placed among
-- the messages by the id of the newest message in the database at that moment (0 before
-- any). Existing members of a chat with messages keep its place by its last message; those
-- of an empty chat get the newest message older than their joining.
ALTER TABLE chat_members ADD COLUMN joined_after_message_id INTEGER NOT NULL DEFAULT 0;
UPDATE chat_members SET joined_after_message_id = COALESCE(
    (SELECT MAX(m.id) FROM messages AS m WHERE m.created_at <= chat_members.joined_at), 0)
WHERE (SELECT c.last_message_id FROM chats AS c WHERE c.id = chat_members.chat_id) IS NULL;

-- version: 7
-- Who a message mentions: one row per member named as @username (the sender naming
-- themselves is not a mention). Keyed by reader first, so a reader's unread mentions in a
-- chat are one range of the primary key; by message too, for replacing a message's mentions
-- and for the cascade when it is deleted. messages.mentions holds the same ids ("3,7"; NULL
-- for none), so a message on the wire costs no lookup.
CREATE TABLE mentions (
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    chat_id INTEGER NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    message_id INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, chat_id, message_id)
) WITHOUT ROWID;
CREATE INDEX mentions_by_message ON mentions (message_id);
ALTER TABLE messages ADD COLUMN mentions TEXT;
