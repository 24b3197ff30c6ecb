-- hookflow store, version 9: whose jobs and timers they are, and what the caps counted.
--
-- A `cancel` (or a rule's `exit_on`) ends, for one contact, the jobs of named rules not
-- yet attempted and their pending `absent` timers: both now carry the contact (the
-- event's lowercased address).
ALTER TABLE jobs ADD COLUMN contact TEXT;
-- A contact's jobs: what a cancel ends, and what `contact.sent.KIND.PERIOD` counts (by
-- when they were planned, which never changes, so the entry is written once).
CREATE INDEX jobs_by_contact ON jobs (contact, kind, created_at) WHERE contact IS NOT NULL;
ALTER TABLE timers ADD COLUMN contact TEXT;
CREATE INDEX timers_by_contact ON timers (contact, rule_id) WHERE contact IS NOT NULL;

-- Frequency caps: one row per job a cap counted, at the time it is due (unix ms). A
-- cancelled job's rows go with it.
CREATE TABLE cap_sends (
    cap     TEXT    NOT NULL,
    contact TEXT    NOT NULL,
    at      INTEGER NOT NULL,
    job_key TEXT    NOT NULL,
    PRIMARY KEY (cap, contact, at, job_key)
) WITHOUT ROWID;
CREATE INDEX cap_sends_by_job ON cap_sends (job_key);

-- Keys hookflow makes for itself the first time it needs one (the one-click unsubscribe
-- key, when the configuration gives none): kept here, so every server on the store
-- signs alike and a restart breaks no link already sent.
CREATE TABLE keys (
    name       TEXT    PRIMARY KEY,
    value      TEXT    NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;

-- `contact.lists` and `contact.props` look a contact up by address, across lists.
CREATE INDEX contacts_by_email ON contacts (email);
