// Package version tells which build of sotad or sota is running: the module version and the git
// commit the binary was built from, as the Go toolchain stamps them (runtime/debug.ReadBuildInfo; `go
// build` inside the repository records vcs.revision, vcs.time and vcs.modified).
package version

import "runtime/debug"

// Version may be set at link time (-ldflags "-X sota/internal/version.Version=v1.2.3"); otherwise the
// module version of the build info is used ("(devel)" for a build from a checkout).
var Version = ""

// Commit may be set at link time too (the Makefile does, from `git rev-parse HEAD`): the toolchain's
// own stamping misses builds from a git worktree and builds with -buildvcs=false.
var Commit = ""

// Info is what a binary knows of its build.
type Info struct {
	Version  string // e.g. v1.2.3 or (devel)
	Commit   string // full git commit hash, "" when unknown
	Time     string // commit time (RFC 3339), "" when unknown
	Modified bool   // the working tree had uncommitted changes
	Go       string // toolchain version
}

// Read returns the build information of the running binary.
func Read() Info {
	info := Info{Version: Version, Commit: Commit}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		if info.Version == "" {
			info.Version = "unknown"
		}
		return info
	}
	info.Go = bi.GoVersion
	if info.Version == "" {
		info.Version = bi.Main.Version
	}
	if info.Version == "" {
		info.Version = "(devel)"
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			if info.Commit == "" {
				info.Commit = s.Value
			}
		case "vcs.time":
			info.Time = s.Value
		case "vcs.modified":
			info.Modified = s.Value == "true"
		}
	}
	return info
}

// String is the one line `--version` prints, e.g. "sotad (devel) commit 0351dee1a2b3 (2026-12-06T06:28:48Z) go1.24.1".
func (i Info) String(program string) string {
	s := program + " " + i.Version
	if i.Commit != "" {
		c := i.Commit
		if len(c) > 12 {
			c = c[:12]
		}
		s += " commit " + c
		if i.Modified {
			s += "+modified"
		}
		if i.Time != "" {
			s += " (" + i.Time + ")"
		}
	} else {
		s += " commit unknown"
	}
	if i.Go != "" {
		s += " " + i.Go
	}
	return s
}
