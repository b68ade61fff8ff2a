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

-- version: 6
-- Messages change after they are sent: an edit stamps edited_at; a reply names the message
-- it answers (no foreign key: a reply outlives its original, which then shows as deleted);
-- reactions are one row per person and emoji, in the order they were given.
ALTER TABLE messages ADD COLUMN edited_at INTEGER;
ALTER TABLE messages ADD COLUMN reply_to_id INTEGER;
CREATE TABLE reactions (
    id INTEGER PRIMARY KEY,
    message_id INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    emoji TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (message_id, user_id, emoji)
);
CREATE INDEX reactions_by_message ON reactions (message_id, id);

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

-- version: 8
-- Search: an FTS5 index of the messages' bodies, kept by triggers on every insert, edit
-- and deletion, whoever writes them. External content: the index holds only its terms,
-- the text stays in messages. unicode61 with remove_diacritics 2 folds case and the
-- accents of Latin letters; the prefix indexes make "pl*" and "pla*" one lookup each.
-- columnsize=0: no table of each message's length in words (a B-tree write less per
-- message), which only ranking by relevance would read; results go by id.
-- query_postgresql.sql's version 8 gives PostgreSQL the same rules (see search.py).
CREATE VIRTUAL TABLE messages_search USING fts5 (
    body,
    content = 'messages',
    content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2',
    prefix = '2 3',
    columnsize = 0
);

CREATE TRIGGER messages_search_insert AFTER INSERT ON messages
BEGIN
    INSERT INTO messages_search (rowid, body) VALUES (NEW.id, NEW.body);
END;

CREATE TRIGGER messages_search_edit AFTER UPDATE OF body ON messages
BEGIN
    INSERT INTO messages_search (messages_search, rowid, body)
    VALUES ('delete', OLD.id, OLD.body);
    INSERT INTO messages_search (rowid, body) VALUES (NEW.id, NEW.body);
END;

CREATE TRIGGER messages_search_delete AFTER DELETE ON messages
BEGIN
    INSERT INTO messages_search (messages_search, rowid, body)
    VALUES ('delete', OLD.id, OLD.body);
END;

-- The index's words, one row per occurrence (db_commands looks up the words a prefix
-- starts, one row each); a view of the index, nothing stored.
CREATE VIRTUAL TABLE messages_search_terms USING fts5vocab (messages_search, instance);

-- The messages already stored.
INSERT INTO messages_search (messages_search) VALUES ('rebuild');

-- version: 9
-- People and administration. The first account is the admin: site.first_user_id is claimed
-- once, by an UPDATE ... WHERE first_user_id IS NULL in the transaction creating the
-- account, so two registrations at once cannot both take it. A display name NULL is the
-- username; a picture is a small square PNG kept in the row itself (a few kilobytes), so
-- backups carry it and no file can outlive its user. login_generation moves when a
-- password changes: sessions made under an older one end.
ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'member'
    CHECK (role IN ('admin', 'member'));
ALTER TABLE users ADD COLUMN display_name TEXT;
ALTER TABLE users ADD COLUMN avatar BLOB;
ALTER TABLE users ADD COLUMN avatar_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN deactivated_at INTEGER;
ALTER TABLE users ADD COLUMN login_generation INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN last_seen_at INTEGER;
ALTER TABLE chats ADD COLUMN private BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE chats ADD COLUMN topic TEXT NOT NULL DEFAULT '';

CREATE TABLE site (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    registration TEXT NOT NULL DEFAULT 'open' CHECK (registration IN ('open', 'closed', 'invite')),
    invite_token TEXT,
    first_user_id INTEGER REFERENCES users (id) ON DELETE SET NULL
);
INSERT INTO site (id, first_user_id) VALUES (1, (SELECT MIN(id) FROM users));
UPDATE users SET role = 'admin' WHERE id = (SELECT first_user_id FROM site WHERE id = 1);

-- A one-time sign-in link: only its SHA-256 is kept.
CREATE TABLE sign_in_links (
    token_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER
);

-- version: 10
-- query_postgresql.sql's version 10 makes PostgreSQL's search fold cheaper for ASCII
-- bodies; nothing changes here.

-- version: 11
-- Search indexes new messages in batches: the writer thread adds every message above
-- indexed_up_to to the index at once (db_commands.index_new_messages), in one statement,
-- instead of a trigger per message, which made FTS5 write a segment of its own for each
-- message. A search reads the index up to indexed_up_to and matches the few newer
-- messages itself (db_commands.list_messages_matching), so a message is found as soon
-- as it is stored. The triggers now keep only the indexed messages: an edit or a deletion
-- of a message below the mark, and a message stored below it (an id reused after the
-- newest message was deleted).
CREATE TABLE messages_search_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    indexed_up_to INTEGER NOT NULL
);
INSERT INTO messages_search_state (id, indexed_up_to)
VALUES (1, (SELECT COALESCE(MAX(id), 0) FROM messages));

DROP TRIGGER messages_search_insert;
DROP TRIGGER messages_search_edit;
DROP TRIGGER messages_search_delete;

CREATE TRIGGER messages_search_insert AFTER INSERT ON messages
WHEN NEW.id <= (SELECT indexed_up_to FROM messages_search_state WHERE id = 1)
BEGIN
    INSERT INTO messages_search (rowid, body) VALUES (NEW.id, NEW.body);
END;

CREATE TRIGGER messages_search_edit AFTER UPDATE OF body ON messages
WHEN OLD.id <= (SELECT indexed_up_to FROM messages_search_state WHERE id = 1)
BEGIN
    INSERT INTO messages_search (messages_search, rowid, body)
    VALUES ('delete', OLD.id, OLD.body);
    INSERT INTO messages_search (rowid, body) VALUES (NEW.id, NEW.body);
END;

CREATE TRIGGER messages_search_delete AFTER DELETE ON messages
WHEN OLD.id <= (SELECT indexed_up_to FROM messages_search_state WHERE id = 1)
BEGIN
    INSERT INTO messages_search (messages_search, rowid, body)
    VALUES ('delete', OLD.id, OLD.body);
END;
