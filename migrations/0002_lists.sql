-- hookflow store, version 2: contact lists and the suppression list.

CREATE TABLE contacts (
    list       TEXT    NOT NULL,
    email      TEXT    NOT NULL,              -- lower-cased
    properties TEXT    NOT NULL DEFAULT '{}', -- JSON object, merged by `set`
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (list, email)
);

-- Addresses no email action may ever send to.
CREATE TABLE suppressions (
    email      TEXT    PRIMARY KEY,           -- lower-cased
    reason     TEXT    NOT NULL,
    event_id   TEXT,                          -- the event that caused it, if any
    created_at INTEGER NOT NULL
);
