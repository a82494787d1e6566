// Package engine is the SOTA Core domain: package binaries, campaigns and update requests, the
// per-vehicle queue and its delivery order, time windows, purge, wake-ups, chunked transfer sessions,
// install reports, data plans and billing cycles, history, and the scheduler.
//
// # Update requests and updates
//
// An update request (QueueUpdate, LaunchCampaign, QueueGetAllPackages) resolves its package over the
// fleet through the resolver (the package's filters ANDed, each selected vehicle's missing
// dependencies added, dependencies first) and stores one update per vehicle with that install list,
// the request's priority and validity period, and a creation time. Updates are written in durable
// batches of Options.BatchSize vehicles; requests for the same package version are queued one at a
// time, and a vehicle that already has that version pending or in flight is skipped.
//
// # Status transitions of an update
//
//	pending  → inFlight   the device starts the transfer (or answers a get-all-packages request)
//	pending  → canceled   Cancel of the request, deletion of the vehicle, or the device's cancel
//	pending  → failed     Purge: the validity period is over (result text "expired", failure time now)
//	inFlight → finished   install report with result codes 0 or 1 (the installed set is updated)
//	inFlight → failed     install report with another code
//	inFlight → canceled   the device's cancel; an operator's cancel in flight (CancelInFlight: at once,
//	                      or, for an update a hawkBit DDI device was offered, when the device accepts)
//
// finished, failed and canceled are final. Cancel of a request and Purge touch pending updates only:
// an update in flight is allowed to complete unless the operator cancels in flight. A device's call
// about a canceled update is 409 update_canceled. Every move goes through SetStatus (or the unexported
// transition inside the caller's transaction), which keeps the per-request status index, the counts
// and the per-status vehicle lists in step; any other move is 409 invalid_transition. The history of
// a vehicle is all its updates in every state.
//
// # Delivery order
//
// A vehicle's queue (Queue, the device poll) is its pending and in-flight updates: in flight first,
// then pending by priority (lower first, DefaultPriority 10), then creation time (SortDelivery). The
// pending updates of a paused campaign are held back from it (held), so that no transport (device
// API, RVI, DDI, wake-ups) offers them; the vehicle's other updates are still offered.
// NextUpdate (QUEUE_GET_NEXT_SOFTWARE_UPDATE) returns the in-flight update, else the first pending one
// inside its validity period whose size (the sum of its install list's binaries) fits in the remaining
// bytes of the active billing cycle of the vehicle's data plan; an update that does not fit stays
// pending until a cycle with room is active. The scheduler (StartScheduler) runs Purge and Xmit
// (QUEUE_INITIATE_XMIT: signed wake-ups to vehicles with something to deliver that are not connected
// and were not woken within their reconnect interval) on a ticker.
package engine
