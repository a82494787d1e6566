-- Presence (engine/contacts.go, engine/wakeup.go): a vehicle's last contact and its last wake-up, each
-- in a row of its own keyed by VIN, rather than rows of kv: recording a contact writes neither the
-- vehicle's record nor the kv table, and a distributed database spreads the rows by VIN. Values are
-- the engine's encoding (8 bytes: Unix nanoseconds, big endian).

-- core/seen/<vin>: the vehicle's last contact with any replica (written at most once per resolution)
CREATE TABLE contacts (
	vin     BYTEA PRIMARY KEY,
	seen_at BYTEA NOT NULL
);

-- core/wake/<vin>: the vehicle's last wake-up or DEV_DISCONNECT
CREATE TABLE wakes (
	vin      BYTEA PRIMARY KEY,
	woken_at BYTEA NOT NULL
);

-- what earlier versions kept in kv moves to the new tables ('core/seen/' and 'core/wake/' are 10
-- bytes; '0' is the byte after '/')
INSERT INTO contacts (vin, seen_at)
	SELECT substring(key FROM 11), value FROM kv WHERE key >= 'core/seen/'::bytea AND key < 'core/seen0'::bytea;
DELETE FROM kv WHERE key >= 'core/seen/'::bytea AND key < 'core/seen0'::bytea;
INSERT INTO wakes (vin, woken_at)
	SELECT substring(key FROM 11), value FROM kv WHERE key >= 'core/wake/'::bytea AND key < 'core/wake0'::bytea;
DELETE FROM kv WHERE key >= 'core/wake/'::bytea AND key < 'core/wake0'::bytea;
