package engine

// Key layout of the engine's records, all under core/. Strings in keys never contain '/': VINs, uuids,
// package names and SemVer versions cannot, and data-plan ids are validated to exclude it. Package
// names and data-plan ids compare case-insensitively, so their key part is lower-cased and the record
// keeps the original case. Times in keys are 16 hex digits of Unix nanoseconds, so key order is time
// order.
//
//	core/req/<reqID>                           UpdateRequest (JSON)
//	core/upd/<vin>/<updateID>                  one vehicle's update (JSON); the vehicle's queue and
//	                                           history are the prefix scan core/upd/<vin>/
//	core/rs/<reqID>/<status>/<vin>             = updateID: per-request status index (counts, VIN lists,
//	                                           cancel; the scheduler's set of vehicles with work)
//	core/act/<name>/<version>/<vin>            = updateID: the vehicle has this package version pending or
//	                                           in flight (a second request skips it)
//	core/pkgreq/<name>/<version>/<reqID>       the request's install lists contain this package version
//	                                           (package_in_use while the request has active updates)
//	core/exp/<end>/<vin>/<updateID>            a pending update whose validity ends at <end> (purge)
//	core/camp/<campaignID>                     Campaign (JSON)
//	core/plan/<planID>                         DataPlan (JSON)
//	core/cycle/<planID>/<start>                BillingCycle (JSON)
//	core/vplan/<vin>                           = planID (original case) of the vehicle's data plan
//	core/bin/<name>/<version>                  Binary: sha256, size, upload time (JSON); the bytes are in
//	                                           <data>/blobs/sha256/<first two hex>/<sha256 hex>
//	core/wakeup/key                            ed25519 seed of the wake-up signing key
//
// A request is written first with state "queuing", then its updates in batches of Options.BatchSize
// vehicles per transaction, then the request again with state "queued" and its counts. A request found
// "queuing" at start (the process stopped mid-way) has its pending updates canceled and state "aborted".

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"sota/resolver"
)

const (
	pReq    = "core/req/"
	pUpd    = "core/upd/"
	pRS     = "core/rs/"
	pAct    = "core/act/"
	pPkgReq = "core/pkgreq/"
	pExp    = "core/exp/"
	pCamp   = "core/camp/"
	pPlan   = "core/plan/"
	pCycle  = "core/cycle/"
	pVPlan  = "core/vplan/"
	pBin    = "core/bin/"
	kWakeup = "core/wakeup/key"
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
func pkgPart(id resolver.PackageID) string { return strings.ToLower(id.Name) + "/" + id.Version }
func actPrefix(id resolver.PackageID) []byte {
	return []byte(pAct + pkgPart(id) + "/")
}
func actKey(id resolver.PackageID, vin string) []byte {
	return []byte(pAct + pkgPart(id) + "/" + vin)
}
func pkgReqPrefix(id resolver.PackageID) []byte { return []byte(pPkgReq + pkgPart(id) + "/") }
func pkgReqKey(id resolver.PackageID, req string) []byte {
	return []byte(pPkgReq + pkgPart(id) + "/" + req)
}
func expKey(end time.Time, vin, upd string) []byte {
	return []byte(pExp + timeKey(end) + "/" + vin + "/" + upd)
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
	Req        string               `json:"r"`
	Install    []resolver.PackageID `json:"i,omitempty"`
	Status     Status               `json:"s"`
	Created    int64                `json:"c"`
	Updated    int64                `json:"u"`
	ResultCode *int                 `json:"rc,omitempty"`
	ResultText string               `json:"rt,omitempty"`
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
