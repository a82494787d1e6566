package store

import "context"

// TrimFeed runs the change feed's truncation now (tests).
func (d *DB) TrimFeed(ctx context.Context) error { return d.feed().trim(ctx) }
