package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/examples"
)

func TestFleetGenerateWritesJSONLines(t *testing.T) {
	var out, errb bytes.Buffer
	require.Equal(t, 0, run([]string{"fleet", "generate", "--seed", "4", "--count", "3"}, nil, &out, &errb), errb.String())
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 3)
	want := examples.Fleet(4, 3)
	for i, l := range lines {
		var v examples.Vehicle
		require.NoError(t, json.Unmarshal([]byte(l), &v))
		assert.Equal(t, want[i].VIN, v.VIN)
	}

	out.Reset()
	assert.Equal(t, 2, run([]string{"fleet", "generate", "--count", "-1"}, nil, &out, &errb))
	assert.Empty(t, out.String())
}
