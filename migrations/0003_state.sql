-- hookflow store, version 3: state for stateful rules, written in the same transaction
-- as the event that changed it.

-- Correlation facts: "an event of this type had this value in this field at this time",
-- kept only for the (type, field) pairs that rules' `after` conditions ask about.
CREATE TABLE facts (
    kind  TEXT    NOT NULL,
    field TEXT    NOT NULL,
    key   TEXT    NOT NULL,
    time  INTEGER NOT NULL,
    PRIMARY KEY (kind, field, key, time)
) WITHOUT ROWID;
CREATE INDEX facts_by_time ON facts (time);

-- `once` keys: the rule fired for this key and stays quiet until `until`.
CREATE TABLE marks (
    rule_id TEXT    NOT NULL,
    key     TEXT    NOT NULL,
    until   INTEGER NOT NULL,
    PRIMARY KEY (rule_id, key)
) WITHOUT ROWID;

-- `absent` timers: rule `rule_id` fires for event `event_id` at `due_at` unless an event
-- with the same `key` arrives between `start` and `due_at` (which deletes the timer).
CREATE TABLE timers (
    rule_id  TEXT    NOT NULL,
    event_id TEXT    NOT NULL,
    key      TEXT    NOT NULL,
    start    INTEGER NOT NULL,
    due_at   INTEGER NOT NULL,
    PRIMARY KEY (rule_id, event_id)
) WITHOUT ROWID;
CREATE INDEX timers_due ON timers (due_at);
CREATE INDEX timers_by_key ON timers (rule_id, key);

-- `threshold` windows: event counts per rule, group, type and time bucket (the window is
-- cut into 60 buckets), so memory is bounded by buckets, not by events.
CREATE TABLE window_counts (
    rule_id TEXT    NOT NULL,
    grp     TEXT    NOT NULL,
    kind    TEXT    NOT NULL,
    bucket  INTEGER NOT NULL,  -- start of the bucket, unix milliseconds
    n       INTEGER NOT NULL,
    PRIMARY KEY (rule_id, grp, kind, bucket)
) WITHOUT ROWID;
CREATE INDEX window_counts_by_bucket ON window_counts (bucket);
