package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestUnknownCommandExitsTwo(t *testing.T) {
	var out, errb bytes.Buffer
	assert.Equal(t, 2, run([]string{"frobnicate"}, nil, &out, &errb))
	assert.Contains(t, errb.String(), `unknown command "frobnicate"`)
	assert.Equal(t, 0, run([]string{"--help"}, nil, &out, &errb))
	assert.Contains(t, out.String(), "Usage: sota COMMAND")
}
