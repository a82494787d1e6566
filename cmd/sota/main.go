// Command sota is the command-line client: filter tools, dry runs, fleet import, the device
// simulator and SDL policy tools. Every rule it applies lives in the domain packages it calls.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// command is one subcommand: "filter validate", "policy merge", …
type command struct {
	name  string // words, space separated
	usage string // arguments
	help  string // one line
	run   func(args []string, stdin io.Reader, stdout, stderr io.Writer) int
}

// commands is filled by the files of this package (init), one file an area.
var commands []command

func register(c command) { commands = append(commands, c) }

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		return 0
	}
	// longest match of words
	best, bestN := -1, 0
	for i, c := range commands {
		words := strings.Fields(c.name)
		if len(words) <= len(args) && len(words) > bestN && strings.Join(args[:len(words)], " ") == c.name {
			best, bestN = i, len(words)
		}
	}
	if best < 0 {
		fmt.Fprintf(stderr, "sota: unknown command %q\n\n", strings.Join(args, " "))
		usage(stderr)
		return 2
	}
	return commands[best].run(args[bestN:], stdin, stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: sota COMMAND [ARGS]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	sorted := append([]command(nil), commands...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].name < sorted[j].name })
	for _, c := range sorted {
		fmt.Fprintf(w, "  %-40s %s\n", c.name+" "+c.usage, c.help)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands that talk to a server take --server URL (default $SOTA_SERVER or http://localhost:8080)")
	fmt.Fprintln(w, "and --token TOKEN (default $SOTA_TOKEN). Run 'sota COMMAND --help' for a command's flags.")
}

// serverFlag adds the --server flag of the commands that talk to a server: default $SOTA_SERVER, else
// http://localhost:8080.
func serverFlag(fs *flag.FlagSet) *string {
	def := os.Getenv("SOTA_SERVER")
	if def == "" {
		def = "http://localhost:8080"
	}
	return fs.String("server", def, "server base URL ($SOTA_SERVER)")
}

// serverFlags adds --server and --token (an admin API token, default $SOTA_TOKEN).
func serverFlags(fs *flag.FlagSet) (server, token *string) {
	return serverFlag(fs), fs.String("token", os.Getenv("SOTA_TOKEN"), "API token ($SOTA_TOKEN)")
}
