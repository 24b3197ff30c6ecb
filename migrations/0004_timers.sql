-- hookflow store, version 4: timers ordered by due time.
--
-- Version 3 keyed timers by (rule_id, event_id) with an index on due_at. Event ids are
-- content hashes, so each new timer landed on a random page of that key, and with many
-- pending timers every group commit rewrote about one page per event: a third of the
-- store's writes under load. Now the key is (due_at, event_seq, rule_id): new timers land
-- at the end (due times grow with time), firing reads from the front, and one index
-- fewer is written per timer. `event_seq` is the event's row in `events`.
CREATE TABLE timers_v4 (
    due_at    INTEGER NOT NULL,
    event_seq INTEGER NOT NULL,
    rule_id   TEXT    NOT NULL,
    key       TEXT    NOT NULL,
    start     INTEGER NOT NULL,
    PRIMARY KEY (due_at, event_seq, rule_id)
) WITHOUT ROWID;
INSERT INTO timers_v4 (due_at, event_seq, rule_id, key, start)
    SELECT t.due_at, e.seq, t.rule_id, t.key, t.start FROM timers t JOIN events e ON e.id = t.event_id;
DROP TABLE timers;
ALTER TABLE timers_v4 RENAME TO timers;
CREATE INDEX timers_by_key ON timers (rule_id, key);
