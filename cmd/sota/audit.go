package main

import (
	"io"
	"net/url"
	"strconv"
	"time"
)

func init() {
	register(command{
		name:  "audit",
		usage: "[--from T] [--to T] [--actor A] [--target X] [--limit N] [--offset N] [-o json]",
		help:  "the audit log, newest first: who changed what, when (admin)",
		run:   runAudit,
	})
}

func runAudit(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	c := newAdminCmd("audit", "[flags]",
		"Lists the audit log newest first (GET /api/v1/audit): every state-changing admin call with its actor\n"+
			"(an account, or token:NAME for an API token), role, route, target and status. Needs an admin token.", true, stdout, stderr)
	from := c.fs.String("from", "", "entries at or after this time (RFC 3339, e.g. 2026-12-06T07:00:00Z)")
	to := c.fs.String("to", "", "entries at or before this time (RFC 3339)")
	actor := c.fs.String("actor", "", "entries of this actor (an account name, or token:NAME)")
	target := c.fs.String("target", "", "entries that changed this entity (a VIN, a filter, NAME or NAME/VERSION)")
	limit := c.fs.Int("limit", 100, "at most this many entries")
	offset := c.fs.Int("offset", 0, "skip this many entries first")
	if code, ok := c.parse(args, 0, ""); !ok {
		return code
	}
	q := url.Values{"limit": {strconv.Itoa(*limit)}, "offset": {strconv.Itoa(*offset)}}
	for k, v := range map[string]string{"from": *from, "to": *to, "actor": *actor, "target": *target} {
		if v != "" {
			q.Set(k, v)
		}
	}
	var entries []struct {
		At      time.Time `json:"at"`
		Actor   string    `json:"actor"`
		Role    string    `json:"role"`
		Method  string    `json:"method"`
		Route   string    `json:"route"`
		Target  string    `json:"target"`
		Status  int       `json:"status"`
		Summary string    `json:"summary"`
	}
	raw, hdr, err := c.getJSON("/audit?"+q.Encode(), &entries)
	if err != nil {
		return c.fail(err)
	}
	if c.json() {
		c.printJSON(raw)
		return 0
	}
	rows := make([][]string, 0, len(entries))
	for _, e := range entries {
		t := e.Target
		if t == "" {
			t = "-"
		}
		rows = append(rows, []string{e.At.Local().Format("2006-01-02 15:04:05"), e.Actor, e.Role, e.Method + " " + e.Route, t, strconv.Itoa(e.Status)})
	}
	c.table([]string{"AT", "ACTOR", "ROLE", "CALL", "TARGET", "STATUS"}, rows)
	printPage(stdout, "entry", "entries", *offset, len(entries), hdr)
	return 0
}
