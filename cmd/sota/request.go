package main

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

func init() {
	register(command{
		name:  "request create",
		usage: "--name NAME --version VERSION [--priority N] [--valid-for DURATION] [--description D] [--confirm] [-q]",
		help:  "queue a package on every vehicle its filters select (an update request)",
		run:   runRequestCreate,
	})
	register(command{
		name:  "request list",
		usage: "[-o json]",
		help:  "list the update requests with their state",
		run:   runRequestList,
	})
	register(command{
		name:  "request show",
		usage: "ID [-o json]",
		help:  "one update request with its vehicles counted per status",
		run:   runRequestShow,
	})
	register(command{
		name:  "request cancel",
		usage: "ID [--in-flight]",
		help:  "cancel the pending updates of an update request (with --in-flight also those in flight)",
		run:   runRequestCancel,
	})
}

type cliRequest struct {
	ID        string `json:"id"`
	Kind      string `json:"kind"`
	PackageID *struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	} `json:"packageId"`
	Priority         int        `json:"priority"`
	PeriodOfValidity string     `json:"periodOfValidity"`
	Description      string     `json:"description"`
	CampaignID       string     `json:"campaignId"`
	CreatedAt        *time.Time `json:"createdAt"`
	State            string     `json:"state"`
	Vehicles         int        `json:"vehicles"`
	Skipped          int        `json:"skipped"`
	Counts           *struct {
		Pending  int `json:"pending"`
		InFlight int `json:"inFlight"`
		Finished int `json:"finished"`
		Failed   int `json:"failed"`
		Canceled int `json:"canceled"`
	} `json:"counts"`
}

func (r cliRequest) what() string {
	if r.PackageID != nil {
		return r.PackageID.Name + " " + r.PackageID.Version
	}
	return r.Kind
}

func runRequestCreate(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	c := newAdminCmd("request create", "--name NAME --version VERSION [flags]",
		"Queues package NAME VERSION on every vehicle the package's filters select, with the missing\n"+
			"dependencies added per vehicle (POST /api/v1/update_requests). A vehicle that already has this\n"+
			"version pending or in flight is skipped. The package needs at least one linked filter.", true, stdout, stderr)
	name := c.fs.String("name", "", "package name")
	version := c.fs.String("version", "", "package version")
	priority := c.fs.Int("priority", 10, "0 to 1000, lower first")
	validFor := c.fs.Duration("valid-for", 0, "how long from now the update may be installed, e.g. 72h (default: no end)")
	desc := c.fs.String("description", "", "description shown to the driver")
	confirm := c.fs.Bool("confirm", false, "ask the driver before installing")
	quiet := c.fs.Bool("q", false, "print only the new request's ID (for scripts: ID=$(sota request create -q ...))")
	c.require("name", "version")
	if code, ok := c.parse(args, 0, ""); !ok {
		return code
	}
	body := map[string]any{
		"packageId":           map[string]string{"name": *name, "version": *version},
		"priority":            *priority,
		"requestConfirmation": *confirm,
	}
	if *desc != "" {
		body["description"] = *desc
	}
	if *validFor < 0 {
		fmt.Fprintf(stderr, "sota request create: --valid-for must be positive, not %s\n", *validFor)
		return 2
	}
	if *validFor > 0 {
		now := time.Now().UTC().Truncate(time.Second)
		body["periodOfValidity"] = now.Format(time.RFC3339) + "/" + now.Add(*validFor).Format(time.RFC3339)
	}
	var r cliRequest
	raw, err := c.sendJSON(http.MethodPost, "/update_requests", body, &r)
	if err != nil {
		return c.fail(err)
	}
	if c.json() {
		c.printJSON(raw)
		return 0
	}
	if *quiet {
		fmt.Fprintln(stdout, r.ID)
		return 0
	}
	fmt.Fprintf(stdout, "Update request %s: %d vehicle(s) queued, %d skipped (already pending or in flight)\n", r.ID, r.Vehicles, r.Skipped)
	fmt.Fprintf(stdout, "Follow it with: sota request show %s\n", r.ID)
	return 0
}

func runRequestList(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	c := newAdminCmd("request list", "[-o json] [--server URL] [--token T]",
		"Lists the update requests, oldest first (GET /api/v1/update_requests).", true, stdout, stderr)
	if code, ok := c.parse(args, 0, ""); !ok {
		return code
	}
	var rs []cliRequest
	raw, _, err := c.getJSON("/update_requests?limit=10000", &rs)
	if err != nil {
		return c.fail(err)
	}
	if c.json() {
		c.printJSON(raw)
		return 0
	}
	rows := make([][]string, 0, len(rs))
	for _, r := range rs {
		rows = append(rows, []string{r.ID, r.what(), strconv.Itoa(r.Priority), strconv.Itoa(r.Vehicles), orDash(r.State), when(r.CreatedAt)})
	}
	c.table([]string{"ID", "PACKAGE", "PRIORITY", "VEHICLES", "STATE", "CREATED"}, rows)
	return 0
}

func runRequestShow(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	c := newAdminCmd("request show", "ID [-o json] [--server URL] [--token T]",
		"Shows one update request and its vehicles counted per status (GET /api/v1/update_requests/ID).", true, stdout, stderr)
	if code, ok := c.parse(args, 1, "the update request's ID"); !ok {
		return code
	}
	var r cliRequest
	raw, _, err := c.getJSON("/update_requests/"+pathEscape(c.arg(0)), &r)
	if err != nil {
		return c.fail(err)
	}
	if c.json() {
		c.printJSON(raw)
		return 0
	}
	fmt.Fprintf(stdout, "Update request %s\n", r.ID)
	fmt.Fprintf(stdout, "Package:     %s\n", r.what())
	fmt.Fprintf(stdout, "Priority:    %d\n", r.Priority)
	fmt.Fprintf(stdout, "Created:     %s\n", when(r.CreatedAt))
	fmt.Fprintf(stdout, "Valid:       %s\n", orDash(r.PeriodOfValidity))
	if r.CampaignID != "" {
		fmt.Fprintf(stdout, "Campaign:    %s\n", r.CampaignID)
	}
	fmt.Fprintf(stdout, "State:       %s\n", orDash(r.State))
	fmt.Fprintf(stdout, "Vehicles:    %d (%d skipped: already pending or in flight)\n", r.Vehicles, r.Skipped)
	if r.Counts != nil {
		c.table([]string{"STATUS", "VEHICLES"}, [][]string{
			{"pending", strconv.Itoa(r.Counts.Pending)},
			{"in flight", strconv.Itoa(r.Counts.InFlight)},
			{"finished", strconv.Itoa(r.Counts.Finished)},
			{"failed", strconv.Itoa(r.Counts.Failed)},
			{"canceled", strconv.Itoa(r.Counts.Canceled)},
		})
	}
	return 0
}

func runRequestCancel(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	c := newAdminCmd("request cancel", "ID [--in-flight] [--server URL] [--token T]",
		"Cancels the pending updates of an update request (PUT /api/v1/update_requests/ID/cancel);\nupdates already in flight finish, unless --in-flight: then a device-API vehicle's update in\nflight is canceled at once and a hawkBit DDI device is asked to cancel (it may refuse).", false, stdout, stderr)
	inFlight := c.fs.Bool("in-flight", false, "cancel the updates in flight too")
	if code, ok := c.parse(args, 1, "the update request's ID"); !ok {
		return code
	}
	var out struct {
		Canceled int `json:"canceled"`
	}
	path := "/update_requests/" + pathEscape(c.arg(0)) + "/cancel"
	if *inFlight {
		path += "?inFlight=true"
	}
	if _, err := c.sendJSON(http.MethodPut, path, nil, &out); err != nil {
		return c.fail(err)
	}
	if *inFlight {
		fmt.Fprintf(stdout, "%d update(s) canceled or asked to cancel, pending and in flight\n", out.Canceled)
		return 0
	}
	fmt.Fprintf(stdout, "%d pending update(s) canceled\n", out.Canceled)
	return 0
}
