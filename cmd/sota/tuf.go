package main

// sota tuf: the release engineers' offline side of signed update metadata. Keys stay in KEYS; only
// signed metadata is sent to the server. Rules live in package signing.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"sota/signing"
)

func init() {
	register(command{
		name:  "tuf init",
		usage: "--dir KEYS",
		help:  "make the offline root and targets keys, the online snapshot and timestamp keys, root.json and targets.json",
		run:   runTUFInit,
	})
	register(command{
		name:  "tuf sign",
		usage: "--dir KEYS [--server URL] [--token TOKEN] [--file NAME/VERSION=PATH ...]",
		help:  "sign every uploaded binary not yet in the image targets with the targets key(s) and upload the targets",
		run:   runTUFSign,
	})
	register(command{
		name:  "tuf rotate",
		usage: "--dir KEYS --role targets|root [--server URL] [--token TOKEN]",
		help:  "replace the targets or root key through a new root version, and re-sign the targets under it",
		run:   runTUFRotate,
	})
}

// fileFlags collects repeated --file NAME/VERSION=PATH.
type fileFlags map[string]string

func (f fileFlags) String() string { return "" }
func (f fileFlags) Set(v string) error {
	k, p, ok := strings.Cut(v, "=")
	if !ok || strings.Count(k, "/") != 1 || p == "" {
		return errors.New("want NAME/VERSION=PATH")
	}
	f[k] = p
	return nil
}

func parseTUFFlags(name string, args []string, stderr io.Writer, extra func(*flag.FlagSet)) (*flag.FlagSet, string, int) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "directory of the key files (KEYS)")
	if extra != nil {
		extra(fs)
	}
	fs.Usage = func() {
		for _, c := range commands {
			if c.name == name {
				fmt.Fprintf(fs.Output(), "Usage: sota %s %s\n\n%s.\nSee README \"Signing releases\".\n\nFlags:\n", name, c.usage, strings.ToUpper(c.help[:1])+c.help[1:])
			}
		}
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, "", 0
		}
		return nil, "", 2
	}
	if *dir == "" || fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sota %s: --dir is required (directory of the key files)\nRun 'sota %s --help' for usage.\n", name, name)
		return nil, "", 2
	}
	return fs, *dir, -1
}

func runTUFInit(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	_, dir, rc := parseTUFFlags("tuf init", args, stderr, nil)
	if rc >= 0 {
		return rc
	}
	if err := signing.Init(dir, time.Now()); err != nil {
		fmt.Fprintln(stderr, "sota tuf init:", err)
		return 1
	}
	fmt.Fprintf(stdout, "made the keys, root.json (version 1) and targets.json (version 1) in %s\n", dir)
	fmt.Fprintf(stdout, "give the server root.json, targets.json, snapshot_key.json and timestamp_key.json (sotad --signing on --tuf-root DIR/root.json);\nkeep root_key.json and targets_key.json offline\n")
	return 0
}

// tufClient talks to the server for sign and rotate.
type tufClient struct{ server, token string }

func (c tufClient) do(method, path string, body []byte) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, strings.TrimRight(c.server, "/")+"/api/v1"+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	if res.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%s %s: %s", method, path, describeError(res.Status, b))
	}
	return b, nil
}

// currentTargets fetches the server's targets and verifies them under the local root: a server that
// hands out targets not signed by our keys gets nothing signed on top of them.
func (c tufClient) currentTargets(dir string) (root, targets []byte, err error) {
	if root, err = os.ReadFile(filepath.Join(dir, "root.json")); err != nil {
		return nil, nil, err
	}
	if targets, err = c.do("GET", "/tuf/image/targets.json", nil); err != nil {
		return nil, nil, err
	}
	if err := signing.CheckTargets(root, targets, time.Now()); err != nil {
		return nil, nil, fmt.Errorf("the server's current targets do not verify under %s: %w", filepath.Join(dir, "root.json"), err)
	}
	return root, targets, nil
}

func runTUFSign(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	files := fileFlags{}
	var server, token *string
	var expires *time.Duration
	_, dir, rc := parseTUFFlags("tuf sign", args, stderr, func(fs *flag.FlagSet) {
		server, token = serverFlags(fs)
		fs.Var(files, "file", "NAME/VERSION=PATH: check that the uploaded binary of NAME/VERSION has this local file's length and sha256 (repeatable)")
		expires = fs.Duration("expires", signing.OfflineExpiry, "how long the signed targets stay valid")
	})
	if rc >= 0 {
		return rc
	}
	fail := func(err error) int { fmt.Fprintln(stderr, "sota tuf sign:", err); return 1 }
	// every targets key of KEYS signs (targets_key.json, targets_key2.json, …), for a threshold above 1
	paths, err := filepath.Glob(filepath.Join(dir, "targets_key*.json"))
	if err != nil || len(paths) == 0 {
		return fail(fmt.Errorf("no targets key in %s (%s)", dir, signing.KeyFileName("targets")))
	}
	var keys []signing.KeyFile
	for _, p := range paths {
		k, err := signing.ReadKeyFile(p)
		if err != nil {
			return fail(err)
		}
		keys = append(keys, k)
	}
	c := tufClient{server: *server, token: *token}
	_, current, err := c.currentTargets(dir)
	if err != nil {
		return fail(err)
	}
	b, err := c.do("GET", "/packages", nil)
	if err != nil {
		return fail(err)
	}
	var pkgs []struct {
		ID struct {
			Name    string `json:"name"`
			Version string `json:"version"`
		} `json:"id"`
		Size     int64  `json:"size"`
		CheckSum string `json:"checkSum"`
		FileName string `json:"fileName"`
	}
	if err := json.Unmarshal(b, &pkgs); err != nil {
		return fail(fmt.Errorf("package list: %w", err))
	}
	var add []signing.Target
	checked := map[string]bool{}
	for _, p := range pkgs {
		if p.CheckSum == "" || p.FileName == "" {
			continue // no binary uploaded
		}
		ref := p.ID.Name + "/" + p.ID.Version
		if path, ok := files[ref]; ok {
			n, sum, err := fileDigest(path)
			if err != nil {
				return fail(err)
			}
			if n != p.Size || sum != p.CheckSum {
				return fail(fmt.Errorf("the uploaded binary of %s (%d bytes, sha256 %s) is not %s (%d bytes, sha256 %s): nothing signed", ref, p.Size, p.CheckSum, path, n, sum))
			}
			checked[ref] = true
		}
		name := signing.TargetName(p.ID.Name, p.ID.Version, p.FileName)
		listed, same, err := signing.TargetsHave(current, name, p.Size, p.CheckSum)
		if err != nil {
			return fail(err)
		}
		if listed && !same {
			fmt.Fprintf(stderr, "sota tuf sign: warning: %s is signed with other contents than the server now holds; not re-signed\n", name)
			continue
		}
		if !listed {
			add = append(add, signing.Target{Name: p.ID.Name, Version: p.ID.Version, FileName: p.FileName, Length: p.Size, SHA256: p.CheckSum})
		}
	}
	for ref := range files {
		if !checked[ref] {
			return fail(fmt.Errorf("--file %s: the server has no binary for it: nothing signed", ref))
		}
	}
	if len(add) == 0 {
		fmt.Fprintln(stdout, "nothing to sign: every uploaded binary is in the signed targets")
		return 0
	}
	next, err := signing.SignTargets(current, add, time.Now().Add(*expires), keys...)
	if err != nil {
		return fail(err)
	}
	if _, err := c.do("POST", "/tuf/image/targets", next); err != nil {
		return fail(err)
	}
	v, _ := signing.Version(next)
	names := make([]string, len(add))
	for i, a := range add {
		names[i] = signing.TargetName(a.Name, a.Version, a.FileName)
	}
	sort.Strings(names)
	fmt.Fprintf(stdout, "uploaded targets version %d with %d new file(s):\n  %s\n", v, len(add), strings.Join(names, "\n  "))
	return 0
}

func fileDigest(path string) (int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	return n, hex.EncodeToString(h.Sum(nil)), err
}

func runTUFRotate(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	var server, token, role *string
	_, dir, rc := parseTUFFlags("tuf rotate", args, stderr, func(fs *flag.FlagSet) {
		server, token = serverFlags(fs)
		role = fs.String("role", "targets", "the key to replace: targets or root")
	})
	if rc >= 0 {
		return rc
	}
	fail := func(err error) int { fmt.Fprintln(stderr, "sota tuf rotate:", err); return 1 }
	if *role != "targets" && *role != "root" {
		return fail(fmt.Errorf("--role must be targets or root, not %q", *role))
	}
	rootKey, err := signing.ReadKeyFile(filepath.Join(dir, signing.KeyFileName("root")))
	if err != nil {
		return fail(err)
	}
	targetsKey, err := signing.ReadKeyFile(filepath.Join(dir, signing.KeyFileName("targets")))
	if err != nil {
		return fail(err)
	}
	c := tufClient{server: *server, token: *token}
	root, current, err := c.currentTargets(dir)
	if err != nil {
		return fail(err)
	}
	newKey, err := signing.NewKey()
	if err != nil {
		return fail(err)
	}
	rot, err := signing.Rotate(root, current, *role, []signing.KeyFile{rootKey}, newKey, []signing.KeyFile{targetsKey}, time.Now())
	if err != nil {
		return fail(err)
	}
	version, _ := signing.Version(rot.Root)
	keyPath := filepath.Join(dir, signing.KeyFileName(*role))
	pending := keyPath + ".new"
	if err := signing.WriteKeyFile(pending, newKey); err != nil {
		return fail(err)
	}
	if _, err := c.do("POST", "/tuf/image/root", rot.Root); err != nil {
		os.Remove(pending)
		return fail(err)
	}
	// the new root is live: keep it and the new key before anything else can fail
	old := fmt.Sprintf("%s.v%d.old", keyPath, version-1)
	if err := os.Rename(keyPath, old); err != nil {
		return fail(err)
	}
	if err := os.Rename(pending, keyPath); err != nil {
		return fail(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "root.json"), rot.Root, 0o644); err != nil {
		return fail(err)
	}
	if _, err := c.do("POST", "/tuf/image/targets", rot.Targets); err != nil {
		return fail(fmt.Errorf("root version %d is live but the re-signed targets were refused (run sota tuf sign): %w", version, err))
	}
	fmt.Fprintf(stdout, "root version %d uploaded with a new %s key (%s); the old key is in %s\ntargets re-signed under it\n", version, *role, keyPath, old)
	return 0
}
