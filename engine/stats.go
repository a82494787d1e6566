package engine

import (
	"sort"
	"strconv"
	"strings"
	"time"

	"sota/store"
	"sota/wire"
)

// FailureCount is how many updates failed with one result.
type FailureCount struct {
	Code  *int   `json:"code"`  // the install report's result code; null for a failure without one (expired, canceled by the server)
	Name  string `json:"name"`  // the code's name (wire.ResultNames), or the result text when there is no code
	Count int    `json:"count"` // updates
}

// FailuresSince counts the updates that turned failed at or after since, by result (the most frequent
// first). It reads the failed entries of each request's status index and their update records, so it
// costs what the failures cost, not what the fleet does.
func (s *Service) FailuresSince(since time.Time) ([]FailureCount, error) {
	from := since.UnixNano()
	byKey := map[string]*FailureCount{}
	err := s.db.View(func(t store.Txn) error {
		var reqs []string
		if err := t.IterateKeys([]byte(pReq), func(k []byte) error {
			reqs = append(reqs, string(k[len(pReq):]))
			return nil
		}); err != nil {
			return err
		}
		for _, req := range reqs {
			pfx := rsPrefix(req, Failed)
			var vins []string
			if err := t.IterateKeys(pfx, func(k []byte) error {
				vins = append(vins, string(k[len(pfx):]))
				return nil
			}); err != nil {
				return err
			}
			for _, vin := range vins {
				rec, err := s.loadUpdate(t, vin, updateIDFor(req, vin))
				if err != nil {
					return err
				}
				if rec.Updated < from {
					continue
				}
				key, name := "text:"+rec.ResultText, rec.ResultText
				if rec.ResultCode != nil {
					key, name = "code:"+resultName(*rec.ResultCode), resultName(*rec.ResultCode)
				} else if name == "" {
					name = "no result"
				}
				fc := byKey[key]
				if fc == nil {
					fc = &FailureCount{Code: rec.ResultCode, Name: name}
					byKey[key] = fc
				}
				fc.Count++
			}
		}
		return nil
	})
	out := make([]FailureCount, 0, len(byKey))
	for _, fc := range byKey {
		out = append(out, *fc)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return strings.Compare(out[i].Name, out[j].Name) < 0
	})
	return out, err
}

// resultName is a result code's name, or the number for a code the original client did not name.
func resultName(code int) string {
	if code >= 0 && code < len(wire.ResultNames) {
		return wire.ResultNames[code]
	}
	return "code " + strconv.Itoa(code)
}

// ActiveCounts is how many updates a vehicle has waiting: pending and in flight.
type ActiveCounts struct {
	Pending  int `json:"pending"`
	InFlight int `json:"inFlight"`
}

// MaxActiveCountVINs bounds the VINs of one ActiveCountsOf call (a page of a vehicle list).
const MaxActiveCountVINs = 1000

// ActiveCountsOf counts the pending and in-flight updates of each vehicle (a vehicle list's "pending
// updates" column); a VIN without updates, or unknown, counts zero. One read transaction.
func (s *Service) ActiveCountsOf(vins []string) (map[string]ActiveCounts, error) {
	out := make(map[string]ActiveCounts, len(vins))
	err := s.db.View(func(t store.Txn) error {
		for _, vin := range vins {
			var c ActiveCounts
			err := t.Iterate(updPrefix(vin), func(_, v []byte) error {
				var rec updRec
				if err := decodeUpd(v, &rec); err != nil {
					return err
				}
				switch rec.Status {
				case Pending:
					c.Pending++
				case InFlight:
					c.InFlight++
				}
				return nil
			})
			if err != nil {
				return err
			}
			out[vin] = c
		}
		return nil
	})
	return out, err
}
