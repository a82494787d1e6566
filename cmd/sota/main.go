// Command sota is the command-line client: packages, update requests and vehicles on a server, filter
// tools, fleet import, the device simulator and SDL policy tools. Every rule it applies lives in the
// domain packages it calls or in the server it talks to.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"sota/internal/version"
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
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "--help", "-help", "help":
		usage(stdout)
		return 0
	case "--version", "-version", "version":
		fmt.Fprintln(stdout, version.Read().String("sota"))
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
		if group := groupOf(args[0]); len(group) > 0 {
			// "sota package": the commands of the group.
			w, code := stderr, 2
			if len(args) > 1 && isHelp(args[1]) {
				w, code = stdout, 0
			} else if len(args) > 1 {
				fmt.Fprintf(stderr, "sota: unknown command %q\n\n", strings.Join(args, " "))
			}
			fmt.Fprintf(w, "Usage: sota %s SUBCOMMAND [ARGS]\n\nCommands:\n", args[0])
			listCommands(w, group)
			fmt.Fprintf(w, "\nRun 'sota %s SUBCOMMAND --help' for a command's flags.\n", args[0])
			return code
		}
		fmt.Fprintf(stderr, "sota: unknown command %q\n\n", strings.Join(args, " "))
		usage(stderr)
		return 2
	}
	rest := args[bestN:]
	for _, a := range rest {
		if a == "--" {
			break
		}
		if isHelp(a) {
			// Help is an answer, not an error: the usage goes to standard output and the exit code is 0,
			// whatever the command's own flag handling does with -h.
			commands[best].run([]string{"-h"}, stdin, stdout, stdout)
			return 0
		}
	}
	return commands[best].run(rest, stdin, stdout, stderr)
}

func isHelp(a string) bool { return a == "-h" || a == "-help" || a == "--help" }

// groupOf returns the commands whose first word is word ("package": package list, show, upload).
func groupOf(word string) []command {
	var out []command
	for _, c := range commands {
		if strings.Fields(c.name)[0] == word && c.name != word {
			out = append(out, c)
		}
	}
	return out
}

func listCommands(w io.Writer, cs []command) {
	sorted := append([]command(nil), cs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].name < sorted[j].name })
	for _, c := range sorted {
		line := c.name + " " + c.usage
		if len(line) > 40 {
			fmt.Fprintf(w, "  %s\n  %-40s %s\n", line, "", c.help)
		} else {
			fmt.Fprintf(w, "  %-40s %s\n", line, c.help)
		}
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: sota COMMAND [ARGS]")
	fmt.Fprintln(w, "       sota --version")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	listCommands(w, commands)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands that talk to a server take --server URL (default $SOTA_SERVER or http://127.0.0.1:8080)")
	fmt.Fprintln(w, "and --token TOKEN (default $SOTA_TOKEN). Run 'sota COMMAND --help' for a command's flags.")
}

// serverFlag adds the --server flag of the commands that talk to a server: default $SOTA_SERVER, else
// http://127.0.0.1:8080 (where `make run` serves).
func serverFlag(fs *flag.FlagSet) *string {
	def := os.Getenv("SOTA_SERVER")
	if def == "" {
		def = "http://127.0.0.1:8080"
	}
	return fs.String("server", def, "server base URL ($SOTA_SERVER)")
}

// serverFlags adds --server and --token (an admin API token, default $SOTA_TOKEN).
func serverFlags(fs *flag.FlagSet) (server, token *string) {
	return serverFlag(fs), fs.String("token", os.Getenv("SOTA_TOKEN"), "API token ($SOTA_TOKEN)")
}
