package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

func init() {
	register(command{
		name:  "vehicle list",
		usage: "[--regex RE] [--package NAME [--package-version V]] [--component PART] [--limit N] [--offset N] [-o json]",
		help:  "search the fleet; each vehicle with when it was last seen, its updates waiting and what it has installed",
		run:   runVehicleList,
	})
	register(command{
		name:  "vehicle token",
		usage: "VIN",
		help:  "mint the vehicle's device token (for sota device) and print it; the previous one stops working",
		run:   runVehicleToken,
	})
	register(command{
		name:  "vehicle show",
		usage: "VIN [-o json]",
		help:  "one vehicle: last seen, attributes, data plan, installed packages and components, queued updates",
		run:   runVehicleShow,
	})
}

type cliVehicle struct {
	VIN        string         `json:"vin"`
	LastSeen   *time.Time     `json:"lastSeen"`
	Attributes map[string]any `json:"attributes"`
	DataPlan   *string        `json:"dataPlan"`
	Packages   []struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	} `json:"packages"`
	Components []string `json:"components"`
}

func runVehicleList(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	c := newAdminCmd("vehicle list", "[flags]",
		"Searches the fleet, sorted by VIN (GET /api/v1/vehicles). Without a criterion it lists every vehicle,\n--limit at a time.", true, stdout, stderr)
	regex := c.fs.String("regex", "", "VINs matching this RE2 regex (unanchored)")
	pkg := c.fs.String("package", "", "vehicles that have this package installed")
	pkgVersion := c.fs.String("package-version", "", "... in this version (with --package)")
	component := c.fs.String("component", "", "vehicles that have this part number installed")
	limit := c.fs.Int("limit", 100, "at most this many vehicles")
	offset := c.fs.Int("offset", 0, "skip this many vehicles first")
	if code, ok := c.parse(args, 0, ""); !ok {
		return code
	}
	if *pkgVersion != "" && *pkg == "" {
		fmt.Fprintln(stderr, "sota vehicle list: --package-version needs --package")
		return 2
	}
	q := url.Values{"expand": {"true"}, "limit": {strconv.Itoa(*limit)}, "offset": {strconv.Itoa(*offset)}}
	for k, v := range map[string]string{"regex": *regex, "packageName": *pkg, "packageVersion": *pkgVersion, "component": *component} {
		if v != "" {
			q.Set(k, v)
		}
	}
	var vs []cliVehicle
	raw, hdr, err := c.getJSON("/vehicles?"+q.Encode(), &vs)
	if err != nil {
		return c.fail(err)
	}
	if c.json() {
		c.printJSON(raw)
		return 0
	}
	// What each vehicle of the page has waiting (pending and in flight), in one call per 1000 VINs.
	active := map[string]struct{ Pending, InFlight int }{}
	for start := 0; start < len(vs); start += 1000 {
		q := url.Values{}
		for _, v := range vs[start:min(start+1000, len(vs))] {
			q.Add("vin", v.VIN)
		}
		if _, _, err := c.getJSON("/stats/active_updates?"+q.Encode(), &active); err != nil {
			return c.fail(err)
		}
	}
	rows := make([][]string, 0, len(vs))
	for _, v := range vs {
		plan := "-"
		if v.DataPlan != nil {
			plan = *v.DataPlan
		}
		waiting := "-"
		if a := active[v.VIN]; a.Pending+a.InFlight > 0 {
			waiting = fmt.Sprintf("%d pending, %d in flight", a.Pending, a.InFlight)
		}
		rows = append(rows, []string{v.VIN, when(v.LastSeen), waiting, strconv.Itoa(len(v.Packages)), strconv.Itoa(len(v.Components)), plan})
	}
	c.table([]string{"VIN", "LAST SEEN", "UPDATES WAITING", "PACKAGES", "COMPONENTS", "DATA PLAN"}, rows)
	printPage(stdout, "vehicle", "vehicles", *offset, len(vs), hdr)
	return 0
}

func runVehicleShow(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	c := newAdminCmd("vehicle show", "VIN [-o json] [--server URL] [--token T]",
		"Shows one vehicle (GET /api/v1/vehicles/VIN) and its queued updates (GET /api/v1/vehicles/VIN/queue).", true, stdout, stderr)
	if code, ok := c.parse(args, 1, "the vehicle's VIN"); !ok {
		return code
	}
	p := "/vehicles/" + pathEscape(c.arg(0))
	var v cliVehicle
	raw, _, err := c.getJSON(p, &v)
	if err != nil {
		return c.fail(err)
	}
	if c.json() {
		c.printJSON(raw)
		return 0
	}
	var queue []struct {
		UpdateID  string `json:"updateId"`
		Kind      string `json:"kind"`
		PackageID *struct {
			Name    string `json:"name"`
			Version string `json:"version"`
		} `json:"packageId"`
		Status    string     `json:"status"`
		Priority  int        `json:"priority"`
		CreatedAt *time.Time `json:"createdAt"`
	}
	if _, _, err := c.getJSON(p+"/queue", &queue); err != nil {
		return c.fail(err)
	}
	fmt.Fprintf(stdout, "Vehicle:    %s\n", v.VIN)
	fmt.Fprintf(stdout, "Last seen:  %s\n", when(v.LastSeen))
	plan := "none"
	if v.DataPlan != nil {
		plan = *v.DataPlan
	}
	fmt.Fprintf(stdout, "Data plan:  %s\n", plan)
	keys := make([]string, 0, len(v.Attributes))
	for k := range v.Attributes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	attrs := make([]string, len(keys))
	for i, k := range keys {
		attrs[i] = fmt.Sprintf("%s=%v", k, v.Attributes[k])
	}
	fmt.Fprintf(stdout, "Attributes: %s\n", orDash(strings.Join(attrs, " ")))
	fmt.Fprintf(stdout, "Components: %s\n", orDash(strings.Join(v.Components, ", ")))
	fmt.Fprintf(stdout, "Packages (%d):\n", len(v.Packages))
	for _, p := range v.Packages {
		fmt.Fprintf(stdout, "  %s %s\n", p.Name, p.Version)
	}
	if len(queue) == 0 {
		fmt.Fprintln(stdout, "Queue:      nothing pending")
		return 0
	}
	fmt.Fprintf(stdout, "Queue (%d):\n", len(queue))
	rows := make([][]string, 0, len(queue))
	for _, u := range queue {
		what := u.Kind
		if u.PackageID != nil {
			what = u.PackageID.Name + " " + u.PackageID.Version
		}
		rows = append(rows, []string{"  " + u.UpdateID, what, statusLabel(u.Status), strconv.Itoa(u.Priority), when(u.CreatedAt)})
	}
	c.table([]string{"  UPDATE", "PACKAGE", "STATUS", "PRIORITY", "CREATED"}, rows)
	return 0
}

func runVehicleToken(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	c := newAdminCmd("vehicle token", "VIN [--server URL] [--token T]",
		"Mints the device token of vehicle VIN (POST /api/v1/vehicles/VIN/token) and prints it alone, for\n"+
			"sota device --token or a script: TOKEN=$(sota vehicle token VIN). The token is shown once; minting\n"+
			"again revokes the previous one.", false, stdout, stderr)
	if code, ok := c.parse(args, 1, "the vehicle's VIN"); !ok {
		return code
	}
	var out struct {
		Token string `json:"token"`
	}
	if _, err := c.sendJSON("POST", "/vehicles/"+pathEscape(c.arg(0))+"/token", nil, &out); err != nil {
		return c.fail(err)
	}
	if out.Token == "" {
		return c.fail(fmt.Errorf("the server answered no token"))
	}
	fmt.Fprintln(stdout, out.Token)
	return 0
}

// statusLabel is an update status as people write it ("in flight", not inFlight).
func statusLabel(s string) string {
	if s == "inFlight" {
		return "in flight"
	}
	return s
}

// printPage says which part of a paged listing was shown (X-Total-Count of hdr) and how to get the next.
func printPage(w io.Writer, one, many string, offset, n int, hdr http.Header) {
	total, _ := strconv.Atoi(hdr.Get("X-Total-Count"))
	switch {
	case n == 0:
		fmt.Fprintf(w, "no %s of %d matches\n", one, total)
	case offset+n < total:
		fmt.Fprintf(w, "%s %d-%d of %d (--offset %d for the next ones)\n", many, offset+1, offset+n, total, offset+n)
	default:
		fmt.Fprintf(w, "%s %d-%d of %d\n", many, offset+1, offset+n, total)
	}
}
