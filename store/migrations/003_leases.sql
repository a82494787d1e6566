-- Leases (leases.go): a named piece of work (a scheduler job, a shard of the wake-ups, a request
-- being queued) held by one process until expires_at, by the database's clock. A process takes a
-- lease that is free or expired, renews its own, and releases it when done; rows are never needed
-- once expired and may be deleted by anyone.
CREATE TABLE leases (
	name       TEXT PRIMARY KEY,
	holder     TEXT NOT NULL,
	expires_at TIMESTAMPTZ NOT NULL
);
