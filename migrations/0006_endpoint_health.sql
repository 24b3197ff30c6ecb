-- hookflow store, version 6: an endpoint is judged by its own health, not by one job.
--
-- A job that exhausts its retries suspends its endpoint only if no attempt to that
-- endpoint succeeded since the job's first attempt: a receiver that refuses one payload
-- and accepts all others is healthy, and the payload dies alone.
ALTER TABLE endpoints ADD COLUMN last_success_at INTEGER;  -- last 2xx from it, unix ms
ALTER TABLE jobs ADD COLUMN first_attempt_at INTEGER;      -- when its first attempt began
