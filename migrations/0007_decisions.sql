-- hookflow store, version 7: what the server decided, and with which rules.
--
-- A stateful rule's decision depends on state at that moment (a `once` key already used,
-- a window's counts, a timer), so it is kept with the event; conditions are worked out
-- again on demand, from the payload and the version of the rules that decided. Rule files
-- are kept by the hash of their text, rule sets by the hash of their files.
ALTER TABLE events ADD COLUMN decisions TEXT;  -- JSON array, one object per decision; NULL: none
ALTER TABLE events ADD COLUMN rule_set TEXT;   -- the rule set that planned it (rule_sets.hash)
CREATE TABLE rule_files (
    hash       TEXT    PRIMARY KEY,   -- of the text
    text       TEXT    NOT NULL,
    first_seen INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE rule_sets (
    hash       TEXT    PRIMARY KEY,
    files      TEXT    NOT NULL,      -- JSON [[path, default rule id, file hash], ...]
    first_seen INTEGER NOT NULL
) WITHOUT ROWID;
-- `once` and threshold marks share a table: `once` keys now carry their prefix, as
-- `threshold:` ones always did, so a key can never be taken for the other's.
UPDATE marks SET key = 'once:' || key WHERE key NOT LIKE 'threshold:%';
