-- hookflow store, version 1. Times are unix milliseconds (UTC).

-- The event journal: every accepted event, once (dedupe on id).
CREATE TABLE events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT    NOT NULL UNIQUE,   -- provider id or content hash: the dedupe key
    source      TEXT    NOT NULL,
    type        TEXT    NOT NULL,
    time        INTEGER NOT NULL,          -- when the provider says it happened
    received_at INTEGER NOT NULL,
    payload     TEXT    NOT NULL,          -- JSON exactly as decoded
    matched     TEXT    NOT NULL           -- JSON array of the rule ids that fired
);
CREATE INDEX events_by_type ON events (type, seq);

-- One row per action to run: rendered at ingest, executed by the delivery workers.
CREATE TABLE jobs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT    NOT NULL UNIQUE,   -- event.id/rule.id/action-index
    event_id        TEXT    NOT NULL,
    rule_id         TEXT    NOT NULL,
    action_index    INTEGER NOT NULL,
    kind            TEXT    NOT NULL,          -- email, http, contacts, suppress, unsuppress, log
    action          TEXT    NOT NULL,          -- the rendered action (JSON)
    endpoint        TEXT,                      -- scheme://host:port for http actions
    status          TEXT    NOT NULL,          -- pending, running, succeeded, dead, failed
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX jobs_due ON jobs (status, next_attempt_at);
CREATE INDEX jobs_by_event ON jobs (event_id);
CREATE INDEX jobs_by_endpoint ON jobs (endpoint, status);

-- Every delivery attempt: the audit trail.
CREATE TABLE attempts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id      INTEGER NOT NULL REFERENCES jobs (id),
    number      INTEGER NOT NULL,
    started_at  INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    status_code INTEGER,                        -- HTTP status, when there was a response
    error       TEXT,                           -- network error or reason of failure
    response    TEXT                            -- response body, truncated to 20 KB
);
CREATE INDEX attempts_by_job ON attempts (job_id, number);

-- Outbound endpoints (scheme://host:port); suspended after a job exhausts its retries.
CREATE TABLE endpoints (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    url          TEXT    NOT NULL UNIQUE,
    status       TEXT    NOT NULL,              -- active, suspended
    suspended_at INTEGER,
    reason       TEXT
);
