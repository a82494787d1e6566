package policy

import (
	"encoding/json"
	"strconv"
	"time"
)

// PolicyService is the endpoints key of the policy server (requirement 4).
const PolicyService = "0x07"

// EndpointURLs returns the URLs a snapshot sent through app appID goes to (requirement 4): the
// policy service's entry for that app id, else its default entry. None when the table has no
// policy service: the app then answers itself (requirement 6, note).
func EndpointURLs(t Table, appID string) []string {
	eps, _ := t.Section("module_config")["endpoints"].(map[string]any)
	svc, _ := eps[PolicyService].(map[string]any)
	list, ok := svc[appID].([]any)
	if !ok || len(list) == 0 {
		list, _ = svc["default"].([]any)
	}
	var urls []string
	for _, u := range list {
		if s, ok := u.(string); ok {
			urls = append(urls, s)
		}
	}
	return urls
}

// Timing returns the wait for a PTU after each snapshot is sent (timeout_after_x_seconds,
// requirement 5) and the pauses between attempts (seconds_between_retries).
func Timing(t Table) (timeout time.Duration, retries []time.Duration) {
	mc := t.Section("module_config")
	timeout = time.Duration(intOf(mc["timeout_after_x_seconds"])) * time.Second
	list, _ := mc["seconds_between_retries"].([]any)
	for _, v := range list {
		retries = append(retries, time.Duration(intOf(v))*time.Second)
	}
	return timeout, retries
}

// Schedule is our reading of requirements 5, 7 and 8 together with seconds_between_retries: the
// first snapshot goes out at 0; each attempt waits timeout for the PTU; when the wait runs out the
// next attempt starts retries[i] seconds later; after the last retry's timeout the sequence gives
// up (status UPDATE_NEEDED until the next trigger). So attempt k starts at
// sum over i<k of (timeout + retries[i]) and there are 1 + len(retries) attempts. For timeout 60 s
// and retries [1 5 25 125 625]: attempts at 0, 61, 126, 211, 396 and 1081 s, give-up at 1141 s.
// An answer (valid or not) stops that attempt's timeout; a valid PTU ends the sequence.
func Schedule(timeout time.Duration, retries []time.Duration) (attempts []time.Duration, giveUp time.Duration) {
	var at time.Duration
	attempts = append(attempts, 0)
	for _, r := range retries {
		at += timeout + r
		attempts = append(attempts, at)
	}
	return attempts, at + timeout
}

func intOf(v any) int64 {
	if n, ok := v.(json.Number); ok {
		i, _ := strconv.ParseInt(string(n), 10, 64)
		return i
	}
	return 0
}
