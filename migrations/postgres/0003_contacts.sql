-- hookflow store on PostgreSQL, version 3: as SQLite's version 9 — jobs and timers carry
-- their contact, for `cancel` and `exit_on`; the rows frequency caps count.
ALTER TABLE jobs ADD COLUMN contact TEXT COLLATE "C";
-- A contact's jobs: what a cancel ends, and what `contact.sent.KIND.PERIOD` counts (by
-- when they were planned, which never changes, so the entry is written once).
CREATE INDEX jobs_by_contact ON jobs (contact, kind, created_at) WHERE contact IS NOT NULL;
ALTER TABLE timers ADD COLUMN contact TEXT COLLATE "C";
CREATE INDEX timers_by_contact ON timers (contact, rule_id) WHERE contact IS NOT NULL;

CREATE TABLE cap_sends (
    cap     TEXT COLLATE "C" NOT NULL,
    contact TEXT COLLATE "C" NOT NULL,
    at      BIGINT NOT NULL,
    job_key TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (cap, contact, at, job_key)
);
CREATE INDEX cap_sends_by_job ON cap_sends (job_key);

CREATE TABLE keys (
    name       TEXT COLLATE "C" PRIMARY KEY,
    value      TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);

-- `contact.lists` and `contact.props` look a contact up by address, across lists.
CREATE INDEX contacts_by_email ON contacts (email);
