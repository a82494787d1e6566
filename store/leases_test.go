package store_test

// Leases on both backends (leases.go). On PostgreSQL several handles on one schema stand for several
// replicas; on Badger one store has several holders (several engines in one process).

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/store"
)

func TestLeaseIsHeldByOneHolderUntilReleasedOrExpired(t *testing.T) {
	eachBackend(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		ok, err := db.TryLease(ctx, "job/purge", "a", time.Minute)
		require.NoError(t, err)
		assert.True(t, ok, "a free lease is granted")
		ok, err = db.TryLease(ctx, "job/purge", "b", time.Minute)
		require.NoError(t, err)
		assert.False(t, ok, "a lease held by a is not granted to b")
		ok, err = db.TryLease(ctx, "job/purge", "a", time.Minute)
		require.NoError(t, err)
		assert.True(t, ok, "the holder renews its lease")
		ls, err := db.Leases(ctx, "job/")
		require.NoError(t, err)
		require.Len(t, ls, 1)
		assert.Equal(t, "a", ls[0].Holder)

		require.NoError(t, db.ReleaseLeases(ctx, "b", "job/purge"), "releasing another's lease is no error")
		ok, err = db.TryLease(ctx, "job/purge", "b", time.Minute)
		require.NoError(t, err)
		assert.False(t, ok, "b's release did not free a's lease")
		require.NoError(t, db.ReleaseLeases(ctx, "a", "job/purge"))
		ok, err = db.TryLease(ctx, "job/purge", "b", time.Minute)
		require.NoError(t, err)
		assert.True(t, ok, "a released lease is granted at once")

		ok, err = db.TryLease(ctx, "job/short", "a", 100*time.Millisecond)
		require.NoError(t, err)
		require.True(t, ok)
		ok, _ = db.TryLease(ctx, "job/short", "b", time.Minute)
		assert.False(t, ok)
		time.Sleep(200 * time.Millisecond)
		ls, err = db.Leases(ctx, "job/short")
		require.NoError(t, err)
		assert.Empty(t, ls, "an expired lease is not listed")
		ok, err = db.TryLease(ctx, "job/short", "b", time.Minute)
		require.NoError(t, err)
		assert.True(t, ok, "an expired lease is taken over")
	})
}

func TestClaimLeasesSplitsShardsAndRespectsTheMaximum(t *testing.T) {
	eachBackend(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		var shards []string
		for i := 0; i < 16; i++ {
			shards = append(shards, fmt.Sprintf("wake/%02d", i))
		}
		a, err := db.ClaimLeases(ctx, "a", shards, 6, time.Minute)
		require.NoError(t, err)
		assert.Equal(t, shards[:6], a, "free shards are taken in the order given, up to the maximum")
		b, err := db.ClaimLeases(ctx, "b", shards, 6, time.Minute)
		require.NoError(t, err)
		assert.Equal(t, shards[6:12], b, "b gets only shards a does not hold")
		a2, err := db.ClaimLeases(ctx, "a", shards, 3, time.Minute)
		require.NoError(t, err)
		assert.Equal(t, shards[:3], a2, "a lower maximum renews only that many of the shards held")
		c, err := db.ClaimLeases(ctx, "c", shards, 0, time.Minute)
		require.NoError(t, err)
		assert.Equal(t, shards[12:], c, "no maximum: every free shard")
	})
}

// Concurrent claims of the same shards by many holders never give a shard to two of them.
func TestConcurrentClaimsGiveEachShardToOneHolder(t *testing.T) {
	eachBackend(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		var shards []string
		for i := 0; i < 16; i++ {
			shards = append(shards, fmt.Sprintf("wake/%02d", i))
		}
		var mu sync.Mutex
		owner := map[string]string{}
		var wg sync.WaitGroup
		errc := make(chan error, 8)
		for h := 0; h < 8; h++ {
			wg.Add(1)
			go func(holder string) {
				defer wg.Done()
				got, err := db.ClaimLeases(ctx, holder, shards, 4, time.Minute)
				if err != nil {
					errc <- err
					return
				}
				mu.Lock()
				defer mu.Unlock()
				for _, s := range got {
					if prev, ok := owner[s]; ok {
						errc <- fmt.Errorf("shard %s granted to %s and %s", s, prev, holder)
					}
					owner[s] = holder
				}
			}(fmt.Sprintf("h%d", h))
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			t.Error(err)
		}
		assert.Len(t, owner, 16, "8 holders of at most 4 each took all 16 shards")
		ls, err := db.Leases(ctx, "wake/")
		require.NoError(t, err)
		for _, l := range ls {
			assert.Equal(t, owner[l.Name], l.Holder, l.Name)
		}
	})
}
