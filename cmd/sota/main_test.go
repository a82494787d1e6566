package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestUnknownCommandExitsTwo(t *testing.T) {
	var out, errb bytes.Buffer
	assert.Equal(t, 2, run([]string{"frobnicate"}, nil, &out, &errb))
	assert.Contains(t, errb.String(), `unknown command "frobnicate"`)
	assert.Equal(t, 0, run([]string{"--help"}, nil, &out, &errb))
	assert.Contains(t, out.String(), "Usage: sota COMMAND")
}

// Help is an answer: every command prints its usage on standard output and exits 0 with -h and
// --help; `sota` alone prints the usage on standard error and exits 2 (it is not a command).
func TestEveryCommandHasHelp(t *testing.T) {
	require.NotEmpty(t, commands)
	for _, c := range commands {
		for _, flag := range []string{"-h", "--help"} {
			var out, errb bytes.Buffer
			args := append(strings.Fields(c.name), flag)
			code := run(args, strings.NewReader(""), &out, &errb)
			assert.Equal(t, 0, code, "sota %s %s", c.name, flag)
			assert.Contains(t, out.String(), "Usage: sota "+c.name, "sota %s %s", c.name, flag)
			assert.Empty(t, errb.String(), "sota %s %s", c.name, flag)
		}
		// Each group word lists its commands.
		var out, errb bytes.Buffer
		group := strings.Fields(c.name)[0]
		if group != c.name {
			assert.Equal(t, 0, run([]string{group, "--help"}, nil, &out, &errb))
			assert.Contains(t, out.String(), c.name)
			out.Reset()
			assert.Equal(t, 2, run([]string{group}, nil, &out, &errb), "sota %s", group)
			assert.Contains(t, errb.String(), "Usage: sota "+group+" SUBCOMMAND")
		}
	}
	var out, errb bytes.Buffer
	assert.Equal(t, 2, run(nil, nil, &out, &errb))
	assert.Empty(t, out.String())
	assert.Contains(t, errb.String(), "Usage: sota COMMAND")
}

func TestVersion(t *testing.T) {
	var out, errb bytes.Buffer
	assert.Equal(t, 0, run([]string{"--version"}, nil, &out, &errb))
	assert.Regexp(t, `^sota \S+ commit \S+`, out.String())
}
