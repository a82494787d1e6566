package engine

// Key layout of the engine's records, all under core/. Strings in keys never contain '/': VINs, uuids,
// package names and SemVer versions cannot, and data-plan ids are validated to exclude it. Package
// names and data-plan ids compare case-insensitively, so their key part is lower-cased and the record
// keeps the original case. Times in keys are 16 hex digits of Unix nanoseconds, so key order is time
// order.
//
//	core/req/<reqID>                           UpdateRequest (JSON)
//	core/upd/<vin>/<updateID>                  one vehicle's update (compact binary, encodeUpd); the
//	                                           vehicle's queue and history are the prefix scan
//	                                           core/upd/<vin>/
//	core/rs/<reqID>/<status>/<vin>             (empty) per-request status index: counts, VIN lists,
//	                                           cancel, purge, the scheduler's vehicles with work, and the
//	                                           "already pending or in flight" check of a new request
//	core/pkgreq/<name>/<version>/<reqID>       (empty) the request's install lists contain this package
//	                                           version (package_in_use while the request has active updates)
//	core/camp/<campaignID>                     Campaign (JSON), with its groups and their requests
//	core/cgrp/<campaignID>/<group>/<n>         a chunk of a campaign group's VINs (campaigns.go)
//	core/cretry/<campaignID>/<vin>             a vehicle's retries in a campaign (campaigns.go)
//	core/plan/<planID>                         DataPlan (JSON)
//	core/cycle/<planID>/<start>                BillingCycle (JSON)
//	core/usage/<planID>/<start>/<shard>        bytes a billing cycle counted from the vehicles whose
//	                                           VIN hashes to the shard (dataplan.go)
//	core/lock/pkg/<name>/<version>             the fence token of the lock that queues the package
//	core/lock/camp/<campaignID>                version, or changes the campaign (locks.go)
//	core/vplan/<vin>                           = planID (original case) of the vehicle's data plan
//	core/seen/<vin>                            the vehicle's last contact (8 bytes big endian, Unix
//	                                           nanoseconds; contacts.go), fed to the fleet index
//	core/wake/<vin>                            the vehicle's last wake-up (or DEV_DISCONNECT), same
//	                                           encoding: no process wakes it again within the reconnect
//	                                           interval (wakeup.go)
//	core/bin/<name>/<version>                  Binary: sha256, size, upload time (JSON); the bytes are in
//	                                           the blob store under the sha256 (store.BlobStore: files
//	                                           <data>/blobs/sha256/<first two hex>/<hex>, or blob/ keys)
//	core/wakeup/key                            ed25519 seed of the wake-up signing key
//	core/act/<actionID>                        = "<vin>/<updateID>": the update a decimal action id names
//	                                           (actions.go; the update record keeps the id too)
//	core/seq/action                            the next unleased action id (8 bytes big endian)
//	core/devcfg/<vin>                          the attribute keys the vehicle reported itself (JSON list;
//	                                           present once it reported any, even none)
//
// Two keys per vehicle and request keep a million-vehicle request cheap to write: the update id is
// derived from the request id and the VIN (UUID version 5, updateIDFor), so the status index needs no
// value, and request-wide fields (package, priority, validity) live in the request record only.
//
// A request is written first with state "queuing", then its updates in chunks of Options.BatchSize
// vehicles (one transaction each, which also reads and writes the request record and the package
// lock's fence), then the request again with state "queued" and its counts.
// The queuing process holds the request's lease queue/<reqID> (leases.go) and renews it with every
// chunk. A request found "queuing" whose lease has expired (its process stopped mid-way), at a
// process's start or by the scheduler's job/purge round, has its pending updates canceled and state
// "aborted"; one whose lease is held is another replica's queuing in progress and is left alone.

import (
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"sota/resolver"
)

const (
	pReq    = "core/req/"
	pUpd    = "core/upd/"
	pRS     = "core/rs/"
	pPkgReq = "core/pkgreq/"
	pCamp   = "core/camp/"
	// pCampGroup and pCampRetry hold a campaign's group membership and retries (campaigns.go)
	pCampGroup = "core/cgrp/"
	pCampRetry = "core/cretry/"
	pPlan      = "core/plan/"
	pCycle     = "core/cycle/"
	pVPlan     = "core/vplan/"
	pSeen      = "core/seen/"
	pWake      = "core/wake/"
	pBin       = "core/bin/"
	kWakeup    = "core/wakeup/key"
	pAct       = "core/act/"
	kActSeq    = "core/seq/action"
	pDevCfg    = "core/devcfg/"
)

func timeKey(t time.Time) string {
	n := t.UnixNano()
	if n < 0 {
		n = 0
	}
	return fmt.Sprintf("%016x", uint64(n))
}

func parseTimeKey(s string) (time.Time, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 8 {
		return time.Time{}, fmt.Errorf("bad time key %q", s)
	}
	var n uint64
	for _, c := range b {
		n = n<<8 | uint64(c)
	}
	return time.Unix(0, int64(n)).UTC(), nil
}

func reqKey(id string) []byte      { return []byte(pReq + id) }
func updPrefix(vin string) []byte  { return []byte(pUpd + vin + "/") }
func updKey(vin, id string) []byte { return []byte(pUpd + vin + "/" + id) }
func rsPrefix(req string, st Status) []byte {
	return []byte(pRS + req + "/" + string(st) + "/")
}
func rsKey(req string, st Status, vin string) []byte {
	return []byte(pRS + req + "/" + string(st) + "/" + vin)
}
func pkgPart(id resolver.PackageID) string      { return strings.ToLower(id.Name) + "/" + id.Version }
func pkgReqPrefix(id resolver.PackageID) []byte { return []byte(pPkgReq + pkgPart(id) + "/") }
func pkgReqKey(id resolver.PackageID, req string) []byte {
	return []byte(pPkgReq + pkgPart(id) + "/" + req)
}
func campKey(id string) []byte     { return []byte(pCamp + id) }
func planKey(id string) []byte     { return []byte(pPlan + strings.ToLower(id)) }
func cyclePrefix(id string) []byte { return []byte(pCycle + strings.ToLower(id) + "/") }
func cycleKey(id string, start time.Time) []byte {
	return []byte(pCycle + strings.ToLower(id) + "/" + timeKey(start))
}
func vplanKey(vin string) []byte          { return []byte(pVPlan + vin) }
func binKey(id resolver.PackageID) []byte { return []byte(pBin + pkgPart(id)) }
func lastPart(key []byte) string {
	s := string(key)
	return s[strings.LastIndexByte(s, '/')+1:]
}

// updRec is the stored form of one vehicle's update; request-wide fields (package, priority, validity)
// live in the request record only, so a million-vehicle request stays small.
type updRec struct {
	Req        string
	Install    []resolver.PackageID // nil: just the request's package
	Status     Status
	Created    int64 // Unix nanoseconds
	Updated    int64
	ResultCode *int
	ResultText string
	// Action is the decimal action id of the update (0: none assigned yet; actions.go).
	Action uint64
	// Flags: flagCancelRequested, flagConfirmed.
	Flags byte
}

// Flags of an update record.
const (
	flagCancelRequested = 1 << iota // an operator canceled it in flight; the device has not answered yet
	flagConfirmed                   // the device confirmed an update that asked for confirmation
)

var statusCodes = []Status{Pending, InFlight, Finished, Failed, Canceled}

// encodeUpd writes: format 1, status index, request id, created, updated (varints), result code
// flag and value, result text, install count and name/version pairs (strings are uvarint length +
// bytes), and, when either is set, the action id (uvarint) and the flags byte. Records without the
// last two (written before they existed) decode with both zero.
func encodeUpd(r *updRec) []byte {
	b := make([]byte, 0, 64+len(r.ResultText)+24*len(r.Install))
	b = append(b, 1, 0)
	for i, st := range statusCodes {
		if st == r.Status {
			b[1] = byte(i)
		}
	}
	b = appendStr(b, r.Req)
	b = binary.AppendVarint(b, r.Created)
	b = binary.AppendVarint(b, r.Updated)
	if r.ResultCode != nil {
		b = append(b, 1)
		b = binary.AppendVarint(b, int64(*r.ResultCode))
	} else {
		b = append(b, 0)
	}
	b = appendStr(b, r.ResultText)
	b = binary.AppendUvarint(b, uint64(len(r.Install)))
	for _, p := range r.Install {
		b = appendStr(appendStr(b, p.Name), p.Version)
	}
	if r.Action != 0 || r.Flags != 0 {
		b = binary.AppendUvarint(b, r.Action)
		b = append(b, r.Flags)
	}
	return b
}

func appendStr(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

var errCorruptUpd = errors.New("engine: corrupt update record")

func decodeUpd(b []byte, r *updRec) error {
	if len(b) < 2 || b[0] != 1 || int(b[1]) >= len(statusCodes) {
		return errCorruptUpd
	}
	r.Status = statusCodes[b[1]]
	d := b[2:]
	bad := false
	str := func() string {
		n, k := binary.Uvarint(d)
		if k <= 0 || uint64(len(d)-k) < n {
			bad = true
			d = nil
			return ""
		}
		s := string(d[k : k+int(n)])
		d = d[k+int(n):]
		return s
	}
	varint := func() int64 {
		v, k := binary.Varint(d)
		if k <= 0 {
			bad = true
			d = nil
			return 0
		}
		d = d[k:]
		return v
	}
	r.Req = str()
	r.Created = varint()
	r.Updated = varint()
	r.ResultCode = nil
	if len(d) > 0 && d[0] == 1 {
		d = d[1:]
		c := int(varint())
		r.ResultCode = &c
	} else if len(d) > 0 {
		d = d[1:]
	}
	r.ResultText = str()
	n, k := binary.Uvarint(d)
	if k <= 0 || n > uint64(len(d)) {
		return errCorruptUpd
	}
	d = d[k:]
	r.Install = nil
	if n > 0 {
		r.Install = make([]resolver.PackageID, n)
		for i := range r.Install {
			r.Install[i].Name = str()
			r.Install[i].Version = str()
		}
	}
	r.Action, r.Flags = 0, 0
	if len(d) > 0 {
		a, k := binary.Uvarint(d)
		if k <= 0 || len(d) < k+1 {
			return errCorruptUpd
		}
		r.Action, r.Flags = a, d[k]
	}
	if bad {
		return errCorruptUpd
	}
	return nil
}

// updateIDFor is the id of the update of request req for vin: the UUID (version 5, SHA-1) of the name
// vin in the namespace req.
func updateIDFor(req, vin string) string {
	var ns [16]byte
	hex.Decode(ns[0:4], []byte(req[0:8]))
	hex.Decode(ns[4:6], []byte(req[9:13]))
	hex.Decode(ns[6:8], []byte(req[14:18]))
	hex.Decode(ns[8:10], []byte(req[19:23]))
	hex.Decode(ns[10:16], []byte(req[24:36]))
	h := sha1.New()
	h.Write(ns[:])
	h.Write([]byte(vin))
	var sum [20]byte
	u := h.Sum(sum[:0])[:16]
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	return formatUUID(u)
}

func formatUUID(b []byte) string {
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:16])
	return string(s[:])
}

func encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Every stored type is a plain struct of strings, numbers and slices of them.
		panic(fmt.Sprintf("engine: encode %T: %v", v, err))
	}
	return b
}

func decode(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("engine: corrupt record %T: %w", v, err)
	}
	return nil
}

func nanos(t time.Time) int64 { return t.UnixNano() }
func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
