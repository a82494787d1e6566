package resolver

import "time"

// SeenCounts is the fleet's size and how many of its vehicles contacted the server since each of the
// given times (the dashboard's "seen in the last 24 hours / 30 days").
type SeenCounts struct {
	Vehicles int   `json:"vehicles"`
	Seen     []int `json:"seen"` // Seen[i]: vehicles whose lastSeen is at or after since[i]
}

// CountSeen counts the vehicles and those seen since each time, from the fleet index (the bitmaps of
// vehicles by the hour of their last contact that seen_within also reads), under one read lock.
func (s *Service) CountSeen(since ...time.Time) (SeenCounts, error) {
	x := s.index
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := SeenCounts{Vehicles: len(x.byVIN), Seen: make([]int, len(since))}
	for i, t := range since {
		out.Seen[i] = int(view{x}.SeenSince(t).GetCardinality())
	}
	return out, nil
}
