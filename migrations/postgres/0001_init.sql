-- hookflow store on PostgreSQL, version 1: the same tables as SQLite's seven migrations
-- leave, in PostgreSQL's types. Times are unix milliseconds (UTC), as in SQLite, so both
-- backends share every computation on them. JSON the engine wrote and reads back whole
-- (payloads, actions) is text, kept byte for byte; JSON the store appends to (matched
-- rules, decisions) is jsonb.

CREATE TABLE events (
    seq         BIGSERIAL PRIMARY KEY,
    id          TEXT   NOT NULL UNIQUE,   -- provider id or content hash: the dedupe key
    source      TEXT   NOT NULL,
    type        TEXT   NOT NULL,
    time        BIGINT NOT NULL,          -- when the provider says it happened
    received_at BIGINT NOT NULL,
    payload     TEXT   NOT NULL,          -- JSON exactly as decoded
    matched     JSONB  NOT NULL,          -- array of the rule ids that fired
    decisions   JSONB,                    -- array of stateful decisions; NULL: none
    rule_set    TEXT                      -- the rule set that planned it (rule_sets.hash)
);
CREATE INDEX events_by_type ON events (type, seq);
CREATE INDEX events_by_received ON events (received_at);

CREATE TABLE jobs (
    id               BIGSERIAL PRIMARY KEY,
    idempotency_key  TEXT COLLATE "C" NOT NULL UNIQUE,   -- event.id/rule.id/action-index; byte order, so an
                                                          -- event's jobs are a range of it
    event_id         TEXT   NOT NULL,
    rule_id          TEXT   NOT NULL,
    action_index     BIGINT NOT NULL,
    kind             TEXT   NOT NULL,
    action           TEXT   NOT NULL,          -- the rendered action (JSON)
    endpoint         TEXT,                     -- scheme://host:port for http actions
    status           TEXT   NOT NULL,          -- pending, running, succeeded, dead, failed, skipped
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    lease_until      BIGINT,
    leased_by        TEXT,                     -- the instance holding the lease
    last_error       TEXT,
    first_attempt_at BIGINT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
-- Only jobs that may be leased are in the index the dispatchers scan.
CREATE INDEX jobs_due ON jobs (next_attempt_at, id) WHERE status IN ('pending', 'running');
CREATE INDEX jobs_by_status ON jobs (status, id);
CREATE INDEX jobs_by_endpoint ON jobs (endpoint);

CREATE TABLE attempts (
    id          BIGSERIAL PRIMARY KEY,
    job_id      BIGINT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    number      BIGINT NOT NULL,
    started_at  BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    status_code INTEGER,
    error       TEXT,
    response    TEXT
);
CREATE INDEX attempts_by_job ON attempts (job_id, number);
CREATE INDEX attempts_by_start ON attempts (started_at);

CREATE TABLE endpoints (
    id              BIGSERIAL PRIMARY KEY,
    url             TEXT   NOT NULL UNIQUE,
    status          TEXT   NOT NULL,          -- active, suspended
    suspended_at    BIGINT,
    reason          TEXT,
    last_success_at BIGINT
);

CREATE TABLE contacts (
    list       TEXT COLLATE "C" NOT NULL,   -- byte order, as in SQLite
    email      TEXT COLLATE "C" NOT NULL,
    properties TEXT   NOT NULL DEFAULT '{}',  -- JSON object, merged by `set` (RFC 7396, in hookflow)
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (list, email)
);

CREATE TABLE suppressions (
    email      TEXT COLLATE "C" PRIMARY KEY,
    reason     TEXT   NOT NULL,
    event_id   TEXT,
    created_at BIGINT NOT NULL
);

CREATE TABLE facts (
    kind  TEXT   NOT NULL,
    field TEXT   NOT NULL,
    key   TEXT   NOT NULL,
    time  BIGINT NOT NULL,
    PRIMARY KEY (kind, field, key, time)
);
CREATE INDEX facts_by_time ON facts (time);

CREATE TABLE marks (
    rule_id TEXT   NOT NULL,
    key     TEXT   NOT NULL,
    until   BIGINT NOT NULL,
    PRIMARY KEY (rule_id, key)
);

CREATE TABLE timers (
    due_at    BIGINT NOT NULL,
    event_seq BIGINT NOT NULL,
    rule_id   TEXT   NOT NULL,
    key       TEXT   NOT NULL,
    start     BIGINT NOT NULL,
    PRIMARY KEY (due_at, event_seq, rule_id)
);
CREATE INDEX timers_by_key ON timers (rule_id, key);

CREATE TABLE window_counts (
    rule_id TEXT   NOT NULL,
    grp     TEXT   NOT NULL,
    kind    TEXT   NOT NULL,
    bucket  BIGINT NOT NULL,
    n       BIGINT NOT NULL,
    PRIMARY KEY (rule_id, grp, kind, bucket)
);
CREATE INDEX window_counts_by_bucket ON window_counts (bucket);

CREATE TABLE rule_files (
    hash       TEXT   PRIMARY KEY,
    text       TEXT   NOT NULL,
    first_seen BIGINT NOT NULL
);
CREATE TABLE rule_sets (
    hash       TEXT   PRIMARY KEY,
    files      TEXT   NOT NULL,   -- JSON [[path, default rule id, file hash], ...]
    first_seen BIGINT NOT NULL
);
