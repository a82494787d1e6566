package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReplicasServeEveryBinary: with PostgreSQL the binaries are in the database (the default
// --blob-store db), so a binary uploaded through replica A is downloaded whole and by Range from B, and
// a device transfer started on A continues chunk for chunk on B, whose Range download of the payload
// gives the same bytes. Skipped without a PostgreSQL server (required
// with SOTA_REQUIRE_POSTGRES=1).
func TestReplicasServeEveryBinary(t *testing.T) {
	ps := startReplicas(t, 2)
	a, b := ps[0], ps[1]
	content := make([]byte, 600<<10+77) // three chunks of the blob store, ten device chunks
	rand.New(rand.NewSource(21)).Read(content)
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, err := mw.CreateFormFile("file", "nav.bin")
	require.NoError(t, err)
	fw.Write(content)
	mw.Close()
	req, err := http.NewRequest("PUT", a+"/packages/nav/1.0.0", &body)
	require.NoError(t, err)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := client.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNoContent, resp.StatusCode)

	get := func(url, token, rng string) (int, []byte) {
		req, err := http.NewRequest("GET", url, nil)
		require.NoError(t, err)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := client.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		got, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, got
	}
	code, got := get(b+"/packages/nav/1.0.0/download", "", "")
	require.Equal(t, http.StatusOK, code, "%s", got)
	assert.True(t, bytes.Equal(content, got), "B serves the binary uploaded through A")
	code, got = get(b+"/packages/nav/1.0.0/download", "", "bytes=262000-300000")
	require.Equal(t, http.StatusPartialContent, code)
	assert.Equal(t, content[262000:300001], got, "a Range across a chunk boundary, on B")

	const vin = "WDDREPL0000000001"
	must(t, 204, "PUT", a+"/vehicles/"+vin, nil)
	var tok struct{ Token string }
	require.NoError(t, json.Unmarshal(must(t, 200, "POST", a+"/vehicles/"+vin+"/token", nil), &tok))
	must(t, 200, "POST", a+"/filters", map[string]string{"name": "everyone", "expression": "TRUE"})
	must(t, 200, "PUT", a+"/packages/nav/1.0.0/filter/everyone", nil)
	must(t, 200, "POST", a+"/update_requests", map[string]any{"packageId": map[string]string{"name": "nav", "version": "1.0.0"}})
	device := func(method, base, path, body string) []byte {
		req, err := http.NewRequest(method, base+"/vehicle_updates/"+vin+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+tok.Token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		require.Equalf(t, http.StatusOK, resp.StatusCode, "%s %s on %s: %s", method, path, base, b)
		return b
	}
	var rows []struct{ UpdateID string }
	require.NoError(t, json.Unmarshal(device("GET", a, "", ""), &rows))
	require.Len(t, rows, 1)
	id := "/" + rows[0].UpdateID
	var tr struct{ ChunksCount int }
	require.NoError(t, json.Unmarshal(device("POST", a, id+"/start", ""), &tr))
	require.Equal(t, 10, tr.ChunksCount)
	var assembled []byte
	for i := 1; i <= tr.ChunksCount; i++ {
		base := a // odd chunks from A, even ones from B
		if i%2 == 0 {
			base = b
		}
		var c struct {
			Index int
			Data  []byte
		}
		require.NoError(t, json.Unmarshal(device("GET", base, id+"/chunk", ""), &c))
		require.Equal(t, i, c.Index, "the lowest unacknowledged chunk, whichever replica answers")
		assembled = append(assembled, c.Data...)
		device("POST", base, id+"/ack", fmt.Sprintf(`{"chunks":[%d]}`, i))
	}
	assert.True(t, bytes.Equal(content, assembled), "the chunks from both replicas are the binary")
	code, got = get(b+"/vehicle_updates/"+vin+id+"/download", tok.Token, "bytes=100-200000")
	require.Equal(t, http.StatusPartialContent, code, "%s", got)
	assert.Equal(t, content[100:200001], got)
}
