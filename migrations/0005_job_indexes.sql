-- hookflow store, version 5: fewer index writes per job.
--
-- `jobs_by_event` duplicated what the unique key already gives: a job's key is
-- `event-id/rule-id/action-index`, so an event's jobs are the keys starting with
-- `event-id/`. Each job wrote it at a random page (event ids are hashes).
-- `jobs_by_endpoint` included `status`, so every lease and every outcome moved the job's
-- entry in it; finding an endpoint's dead jobs needs the endpoint alone.
DROP INDEX jobs_by_event;
DROP INDEX jobs_by_endpoint;
CREATE INDEX jobs_by_endpoint ON jobs (endpoint);
