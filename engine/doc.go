// Package engine is the SOTA Core domain: package binaries, campaigns and update requests, the
// per-vehicle queue and its delivery order, time windows, purge, wake-ups, chunked transfer sessions,
// install reports, data plans and billing cycles, history, and the scheduler.
package engine
