package store_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/store"
)

// TestGetManyReadsLikeGet: GetMany answers for every key what Get does (a value, an empty value for
// the families without one, nil for a missing key), in the order asked, for keys of every table and of
// kv mixed, more keys than one round trip carries, and, in a read-write transaction, what the
// transaction itself set or deleted.
func TestGetManyReadsLikeGet(t *testing.T) {
	eachBackend(t, func(t *testing.T, db *store.DB) {
		keys := conformanceKeys()
		fill(t, db, keys)
		var many []string
		for i := 0; i < 2500; i++ { // more than one chunk of the PostgreSQL backend
			many = append(many, fmt.Sprintf("fleet/v/WDD%014d", i))
		}
		fill(t, db, many[:1200])
		ask := append([]string{"core/upd/" + vinC + "/none", "nothing"}, keys...)
		ask = append(ask, many...)
		ask = append(ask, keys[3], "fleet/v/"+vinA+"0") // a key twice, a missing one last
		want := func(x store.Txn) [][]byte {
			out := make([][]byte, len(ask))
			for i, k := range ask {
				v, err := x.Get([]byte(k))
				if errors.Is(err, store.ErrNotFound) {
					continue
				}
				require.NoError(t, err, k)
				out[i] = v
			}
			return out
		}
		check := func(x store.Txn, what string) {
			bs := make([][]byte, len(ask))
			for i, k := range ask {
				bs[i] = []byte(k)
			}
			got, err := store.GetMany(x, bs)
			require.NoError(t, err)
			exp := want(x)
			require.Len(t, got, len(exp))
			for i := range exp {
				assert.Equalf(t, exp[i] == nil, got[i] == nil, "%s: %q found by Get, not by GetMany, or the other way", what, ask[i])
				assert.Equalf(t, string(exp[i]), string(got[i]), "%s: %q", what, ask[i])
			}
		}
		require.NoError(t, db.View(func(x store.Txn) error { check(x, "view"); return nil }))
		require.NoError(t, db.Update(func(x store.Txn) error {
			require.NoError(t, x.Set([]byte(many[1500]), []byte("set here")))
			require.NoError(t, x.Delete([]byte(many[10])))
			require.NoError(t, x.Delete([]byte(keys[0])))
			check(x, "update")
			got, err := store.GetMany(x, [][]byte{[]byte(many[1500]), []byte(many[10]), []byte(keys[0])})
			require.NoError(t, err)
			assert.Equal(t, [][]byte{[]byte("set here"), nil, nil}, got, "what the transaction wrote")
			return nil
		}))
	})
}
