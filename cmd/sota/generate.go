package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"sota/examples"
)

func init() {
	register(command{
		name:  "fleet generate",
		usage: "[--seed N] [--count N]",
		help:  "write a generated example fleet as JSON lines (the fleet import format) to stdout",
		run:   runFleetGenerate,
	})
}

func runFleetGenerate(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("fleet generate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	seed := fs.Int64("seed", 1, "generator seed: the same seed and count give the same fleet")
	count := fs.Int("count", 1000, "number of vehicles")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: sota fleet generate [--seed N] [--count N]\n\nWrites a generated example fleet as JSON lines (the format of sota fleet import) to standard output.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *count < 0 || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "sota fleet generate: --count must be >= 0 and no arguments are taken")
		return 2
	}
	if err := examples.WriteJSONL(stdout, *seed, *count); err != nil {
		fmt.Fprintln(stderr, "sota fleet generate:", err)
		return 1
	}
	return 0
}
