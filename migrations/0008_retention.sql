-- Retention: the journal (events, their jobs and attempts) is pruned past `retention`,
-- except an event an `absent` timer still waits on. Finding those by event is this index.
CREATE INDEX timers_by_event ON timers (event_seq);
