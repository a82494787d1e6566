package main

// sota campaign: staged rollouts (API.md "Rollouts: staged campaigns"). The rules live in the
// server; these commands build requests and print answers.

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

func init() {
	register(command{name: "campaign create", usage: "--name NAME --package NAME --version VERSION [--group NAME=N%[,filter:EXPR]]... [flags]",
		help: "create a staged campaign (groups, success and error thresholds, retries)", run: runCampaignCreate})
	register(command{name: "campaign list", usage: "[-o json]", help: "list the campaigns with their status", run: runCampaignList})
	register(command{name: "campaign preview", usage: "ID [-o json]", help: "what launching the campaign now would do: groups and problems", run: runCampaignPreview})
	register(command{name: "campaign launch", usage: "ID", help: "assign the groups and release the first one", run: campaignAction("launch")})
	register(command{name: "campaign pause", usage: "ID", help: "stop offering the campaign's pending updates", run: campaignAction("pause")})
	register(command{name: "campaign resume", usage: "ID", help: "offer them again and evaluate the gates", run: campaignAction("resume")})
	register(command{name: "campaign release", usage: "ID", help: "release the next group now, whatever its gate says", run: campaignAction("release")})
	register(command{name: "campaign abort", usage: "ID", help: "cancel every pending update of the campaign", run: campaignAction("abort")})
	register(command{name: "campaign show", usage: "ID [--watch] [--vins GROUP] [-o json]", help: "a campaign's groups with progress bars (--watch: live until it ends)", run: runCampaignShow})
}

type cliCounts struct {
	Pending  int `json:"pending"`
	InFlight int `json:"inFlight"`
	Finished int `json:"finished"`
	Failed   int `json:"failed"`
	Canceled int `json:"canceled"`
}

func (c cliCounts) total() int { return c.Pending + c.InFlight + c.Finished + c.Failed + c.Canceled }

type cliCampaign struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	PackageID struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	} `json:"packageId"`
	Status           string `json:"status"`
	PauseReason      string `json:"pauseReason"`
	SuccessThreshold int    `json:"successThreshold"`
	ErrorThreshold   *int   `json:"errorThreshold"`
	Groups           []struct {
		Name     string    `json:"name"`
		Status   string    `json:"status"`
		Vehicles int       `json:"vehicles"`
		Requests []string  `json:"requests"`
		Counts   cliCounts `json:"counts"`
	} `json:"groups"`
	Counts cliCounts `json:"counts"`
}

// groupFlag collects --group NAME=N%[,filter:EXPR] | NAME=filter:EXPR | NAME.
type groupFlag []map[string]any

func (g *groupFlag) String() string { return "" }

func (g *groupFlag) Set(v string) error {
	name, spec, _ := strings.Cut(v, "=")
	name = strings.TrimSpace(name)
	if name == "" {
		return fmt.Errorf("a group needs a name: NAME=N%%, NAME=filter:EXPR, NAME=N%%,filter:EXPR or NAME")
	}
	grp := map[string]any{"name": name}
	spec = strings.TrimSpace(spec)
	if pct, rest, ok := strings.Cut(spec, "%"); ok && !strings.HasPrefix(spec, "filter:") {
		n, err := strconv.Atoi(strings.TrimSpace(pct))
		if err != nil {
			return fmt.Errorf("group %s: %q is not a percent like 10%%", name, pct+"%")
		}
		grp["percent"] = n
		spec = strings.TrimPrefix(strings.TrimSpace(rest), ",")
	}
	if spec != "" {
		f, ok := strings.CutPrefix(strings.TrimSpace(spec), "filter:")
		if !ok {
			return fmt.Errorf("group %s: expected N%% or filter:EXPR, not %q", name, spec)
		}
		grp["filter"] = f
	}
	*g = append(*g, grp)
	return nil
}

func runCampaignCreate(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	c := newAdminCmd("campaign create", "--name NAME --package NAME --version VERSION [flags]",
		"Creates a campaign (POST /api/v1/campaigns). Groups are released in order, each when the one before\n"+
			"has --success percent of its vehicles finished; past --error percent failed the campaign pauses\n"+
			"itself. A group is NAME=N% (that share of the whole target, chosen by a hash of the campaign and\n"+
			"the VIN), NAME=filter:EXPR (the vehicles matching EXPR), both (NAME=N%,filter:EXPR) or NAME (every\n"+
			"vehicle left); the vehicles no group takes form a final group \"rest\". Example:\n"+
			"  sota campaign create --name 'Maps Dec' --package nav-maps --version 2026.12.0 \\\n"+
			"    --group canary=1% --group early=10% --error 5", false, stdout, stderr)
	name := c.fs.String("name", "", "campaign name")
	pkg := c.fs.String("package", "", "package name")
	version := c.fs.String("version", "", "package version")
	var groups groupFlag
	c.fs.Var(&groups, "group", "a group, in release order (repeat the flag): NAME=N%, NAME=filter:EXPR, NAME=N%,filter:EXPR or NAME")
	priority := c.fs.Int("priority", 10, "0 to 1000, lower first")
	success := c.fs.Int("success", 0, "percent of a group that must have finished before the next is released (default 90)")
	errPct := c.fs.Int("error", -1, "pause by itself when more than this percent of the released vehicles failed (default: never)")
	continuous := c.fs.Bool("continuous", false, "vehicles that come to match later join the last group until the end")
	retries := c.fs.Int("retry", 0, "retry a vehicle whose update failed with a retryable code this many times (1-10)")
	retryDelay := c.fs.Duration("retry-delay", 0, "wait this long before a retry")
	validFor := c.fs.Duration("valid-for", 0, "the campaign ends this long from now, e.g. 720h (default: no end)")
	quiet := c.fs.Bool("q", false, "print only the new campaign's ID")
	c.require("name", "package", "version")
	if code, ok := c.parse(args, 0, ""); !ok {
		return code
	}
	body := map[string]any{"name": *name, "packageId": map[string]string{"name": *pkg, "version": *version},
		"priority": *priority, "continuous": *continuous}
	if len(groups) > 0 {
		body["groups"] = groups
	}
	if *success != 0 {
		body["successThreshold"] = *success
	}
	if *errPct >= 0 {
		body["errorThreshold"] = *errPct
	}
	if *retries != 0 {
		body["retry"] = map[string]int{"attempts": *retries, "delaySeconds": int(retryDelay.Seconds())}
	}
	if *validFor > 0 {
		now := time.Now().UTC().Truncate(time.Second)
		body["startTime"], body["endTime"] = now.Format(time.RFC3339), now.Add(*validFor).Format(time.RFC3339)
	}
	var cp cliCampaign
	if _, err := c.sendJSON(http.MethodPost, "/campaigns", body, &cp); err != nil {
		return c.fail(err)
	}
	if *quiet {
		fmt.Fprintln(stdout, cp.ID)
		return 0
	}
	names := make([]string, len(cp.Groups))
	for i, g := range cp.Groups {
		names[i] = g.Name
	}
	fmt.Fprintf(stdout, "Campaign %s created: %s %s in groups %s\n", cp.ID, cp.PackageID.Name, cp.PackageID.Version, strings.Join(names, ", "))
	fmt.Fprintf(stdout, "Preview it with: sota campaign preview %s\n", cp.ID)
	return 0
}

func runCampaignList(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	c := newAdminCmd("campaign list", "[-o json]", "Lists the campaigns, oldest first (GET /api/v1/campaigns).", true, stdout, stderr)
	if code, ok := c.parse(args, 0, ""); !ok {
		return code
	}
	var cs []cliCampaign
	raw, _, err := c.getJSON("/campaigns", &cs)
	if err != nil {
		return c.fail(err)
	}
	if c.json() {
		c.printJSON(raw)
		return 0
	}
	var rows [][]string
	for _, cp := range cs {
		rows = append(rows, []string{cp.ID, cp.Name, cp.PackageID.Name + " " + cp.PackageID.Version, cp.Status,
			strconv.Itoa(cp.Counts.Finished) + "/" + strconv.Itoa(cp.Counts.total())})
	}
	c.table([]string{"ID", "NAME", "PACKAGE", "STATUS", "FINISHED"}, rows)
	return 0
}

func runCampaignPreview(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	c := newAdminCmd("campaign preview", "ID [-o json]",
		"What launching the campaign now would do (GET /api/v1/campaigns/ID/preview): how many vehicles,\n"+
			"each group's size, and the problems (missing binaries, unresolved dependencies, data plans, dormant\n"+
			"vehicles).", true, stdout, stderr)
	if code, ok := c.parse(args, 1, "the campaign's ID"); !ok {
		return code
	}
	var pv struct {
		Matched, AlreadyInstalled int
		Groups                    []struct {
			Name     string
			Vehicles int
		}
		Problems []struct {
			Code, Description string
			Vehicles          int
			Sample            []string
		}
	}
	raw, _, err := c.getJSON("/campaigns/"+pathEscape(c.arg(0))+"/preview", &pv)
	if err != nil {
		return c.fail(err)
	}
	if c.json() {
		c.printJSON(raw)
		return 0
	}
	fmt.Fprintf(stdout, "%d vehicles match (%d have it already)\n", pv.Matched, pv.AlreadyInstalled)
	var rows [][]string
	for _, g := range pv.Groups {
		rows = append(rows, []string{g.Name, strconv.Itoa(g.Vehicles)})
	}
	c.table([]string{"GROUP", "VEHICLES"}, rows)
	if len(pv.Problems) == 0 {
		fmt.Fprintln(stdout, "Problems: none")
	}
	for _, p := range pv.Problems {
		fmt.Fprintf(stdout, "Problem %s: %s", p.Code, p.Description)
		if len(p.Sample) > 0 {
			fmt.Fprintf(stdout, " (e.g. %s)", strings.Join(p.Sample, ", "))
		}
		fmt.Fprintln(stdout)
	}
	return 0
}

func campaignAction(action string) func([]string, io.Reader, io.Writer, io.Writer) int {
	return func(args []string, _ io.Reader, stdout, stderr io.Writer) int {
		c := newAdminCmd("campaign "+action, "ID", "POST /api/v1/campaigns/ID/"+action+"; prints the campaign after it.", false, stdout, stderr)
		if code, ok := c.parse(args, 1, "the campaign's ID"); !ok {
			return code
		}
		var out struct {
			Vehicles int
			Canceled *int
			Groups   []struct {
				Name     string
				Vehicles int
			}
		}
		if _, err := c.sendJSON(http.MethodPost, "/campaigns/"+pathEscape(c.arg(0))+"/"+action, nil, &out); err != nil {
			return c.fail(err)
		}
		switch {
		case action == "launch":
			var gs []string
			for _, g := range out.Groups {
				gs = append(gs, fmt.Sprintf("%s %d", g.Name, g.Vehicles))
			}
			fmt.Fprintf(stdout, "Launched to %d vehicles in groups: %s\n", out.Vehicles, strings.Join(gs, ", "))
		case out.Canceled != nil:
			fmt.Fprintf(stdout, "Aborted: %d pending updates canceled\n", *out.Canceled)
		}
		cp, err := getCampaign(c, c.arg(0))
		if err != nil {
			return c.fail(err)
		}
		printCampaign(stdout, cp)
		return 0
	}
}

func getCampaign(c *adminCmd, id string) (cliCampaign, error) {
	var cp cliCampaign
	_, _, err := c.getJSON("/campaigns/"+pathEscape(id), &cp)
	return cp, err
}

// bar draws finished (#) and failed (x) of total in width cells.
func bar(fin, failed, total, width int) string {
	if total == 0 {
		return "[" + strings.Repeat(" ", width) + "]"
	}
	f := fin * width / total
	x := failed * width / total
	if failed > 0 && x == 0 {
		x = 1
	}
	if f+x > width {
		f = width - x
	}
	return "[" + strings.Repeat("#", f) + strings.Repeat("x", x) + strings.Repeat(".", width-f-x) + "]"
}

func printCampaign(w io.Writer, cp cliCampaign) {
	fmt.Fprintf(w, "Campaign %s %q: %s %s, %s\n", cp.ID, cp.Name, cp.PackageID.Name, cp.PackageID.Version, cp.Status)
	if cp.PauseReason != "" {
		fmt.Fprintf(w, "Paused: %s\n", cp.PauseReason)
	}
	thr := "none"
	if cp.ErrorThreshold != nil {
		thr = strconv.Itoa(*cp.ErrorThreshold) + "%"
	}
	fmt.Fprintf(w, "Next group at %d%% finished; pauses past %s failed\n", cp.SuccessThreshold, thr)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tSTATUS\tVEHICLES\tPROGRESS\tFINISHED\tFAILED\tPENDING\tIN FLIGHT\tCANCELED")
	for _, g := range cp.Groups {
		n := g.Counts.total()
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%d\t%d\t%d\t%d\n", g.Name, g.Status, g.Vehicles, bar(g.Counts.Finished, g.Counts.Failed, n, 20),
			g.Counts.Finished, g.Counts.Failed, g.Counts.Pending, g.Counts.InFlight, g.Counts.Canceled)
	}
	tw.Flush()
}

func runCampaignShow(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	c := newAdminCmd("campaign show", "ID [--watch] [--vins GROUP] [-o json]",
		"Shows a campaign: its status, the pause reason, and each group with a progress bar (# finished,\n"+
			"x failed) (GET /api/v1/campaigns/ID). --watch redraws it every --interval until the campaign is\n"+
			"finished or aborted (Ctrl-C stops watching). --vins GROUP prints the VINs queued in that group.", true, stdout, stderr)
	watch := c.fs.Bool("watch", false, "redraw until the campaign is finished or aborted")
	interval := c.fs.Duration("interval", 2*time.Second, "how often --watch redraws")
	vins := c.fs.String("vins", "", "print the VINs of this group's updates, one a line")
	if code, ok := c.parse(args, 1, "the campaign's ID"); !ok {
		return code
	}
	if *vins != "" {
		cp, err := getCampaign(c, c.arg(0))
		if err != nil {
			return c.fail(err)
		}
		for _, g := range cp.Groups {
			if !strings.EqualFold(g.Name, *vins) {
				continue
			}
			for _, r := range g.Requests {
				var vs []struct{ VIN string }
				if _, _, err := c.getJSON("/update_requests/"+pathEscape(r)+"/vehicles?limit=10000", &vs); err != nil {
					return c.fail(err)
				}
				for _, v := range vs {
					fmt.Fprintln(stdout, v.VIN)
				}
			}
			return 0
		}
		return c.fail(fmt.Errorf("the campaign has no group %q", *vins))
	}
	last := ""
	for {
		raw, _, err := c.getJSON("/campaigns/"+pathEscape(c.arg(0)), nil)
		if err != nil {
			return c.fail(err)
		}
		if c.json() && !*watch {
			c.printJSON(raw)
			return 0
		}
		cp, err := getCampaign(c, c.arg(0))
		if err != nil {
			return c.fail(err)
		}
		var b strings.Builder
		printCampaign(&b, cp)
		if frame := b.String(); frame != last {
			if *watch && last != "" {
				fmt.Fprintf(stdout, "\n%s\n", time.Now().Format("15:04:05"))
			}
			fmt.Fprint(stdout, frame)
			last = frame
		}
		if !*watch || cp.Status == "finished" || cp.Status == "aborted" {
			return 0
		}
		time.Sleep(*interval)
	}
}
