-- The first schema. Keys are BYTEA: a key family's segments are the primary key of its table, in key
-- order, so that a prefix scan is an index range scan and keys come back in byte order. Every key of
-- no family here is a row of kv. Values are the domains' own encodings (JSON or binary).

-- every key outside the tables below (catalogue, filters, auth, policy, signing, webhooks, ...)
CREATE TABLE kv (
	key   BYTEA PRIMARY KEY,
	value BYTEA NOT NULL
);

-- fleet/v/<vin>: the resolver's vehicle record
CREATE TABLE vehicles (
	vin    BYTEA PRIMARY KEY,
	record BYTEA NOT NULL
);

-- core/req/<request_id>: an update request
CREATE TABLE update_requests (
	request_id BYTEA PRIMARY KEY,
	record     BYTEA NOT NULL
);

-- core/upd/<vin>/<update_id>: one vehicle's update; a vehicle's queue is a range of the primary key
CREATE TABLE updates (
	vin       BYTEA NOT NULL,
	update_id BYTEA NOT NULL,
	record    BYTEA NOT NULL,
	PRIMARY KEY (vin, update_id)
);

-- core/rs/<request_id>/<status>/<vin>: which vehicles of a request are in which status
CREATE TABLE update_status (
	request_id BYTEA NOT NULL,
	status     BYTEA NOT NULL,
	vin        BYTEA NOT NULL,
	PRIMARY KEY (request_id, status, vin)
);

-- core/xfer/<vin>/<update_id>: a transfer session (chunks acknowledged, bytes sent)
CREATE TABLE transfers (
	vin       BYTEA NOT NULL,
	update_id BYTEA NOT NULL,
	record    BYTEA NOT NULL,
	PRIMARY KEY (vin, update_id)
);

-- core/act/<action_id>: "<vin>/<update_id>" of the update a decimal action id names
CREATE TABLE actions (
	action_id BYTEA PRIMARY KEY,
	target    BYTEA NOT NULL
);
