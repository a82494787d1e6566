package main

import (
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

func init() {
	register(command{
		name:  "package list",
		usage: "[--regex RE] [-o json]",
		help:  "list the packages (name, version, binary size, filters)",
		run:   runPackageList,
	})
	register(command{
		name:  "package show",
		usage: "NAME VERSION [-o json]",
		help:  "one package: metadata, binary, filters, dependencies, vehicles that have it",
		run:   runPackageShow,
	})
	register(command{
		name:  "package upload",
		usage: "--name NAME --version VERSION [--description D] [--vendor V] FILE",
		help:  "upload a package's binary (registering the package when it is new)",
		run:   runPackageUpload,
	})
}

type cliPackage struct {
	ID struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	} `json:"id"`
	Description string `json:"description"`
	Vendor      string `json:"vendor"`
	Size        int64  `json:"size"`
	CheckSum    string `json:"checkSum"`
}

func runPackageList(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	c := newAdminCmd("package list", "[--regex RE] [-o json] [--server URL] [--token T]",
		"Lists the packages, sorted by name then version (GET /api/v1/packages).", true, stdout, stderr)
	regex := c.fs.String("regex", "", "only packages whose name or version matches this RE2 regex")
	if code, ok := c.parse(args, 0, ""); !ok {
		return code
	}
	q := url.Values{"limit": {"10000"}}
	if *regex != "" {
		q.Set("regex", *regex)
	}
	var pkgs []cliPackage
	raw, hdr, err := c.getJSON("/packages?"+q.Encode(), &pkgs)
	if err != nil {
		return c.fail(err)
	}
	if c.json() {
		c.printJSON(raw)
		return 0
	}
	var links []struct{ PackageName, PackageVersion, FilterName string }
	if _, _, err := c.getJSON("/packages/filter", &links); err != nil {
		return c.fail(err)
	}
	filtersOf := map[string][]string{}
	for _, l := range links {
		k := strings.ToLower(l.PackageName + "\x00" + l.PackageVersion)
		filtersOf[k] = append(filtersOf[k], l.FilterName)
	}
	rows := make([][]string, 0, len(pkgs))
	for _, p := range pkgs {
		rows = append(rows, []string{p.ID.Name, p.ID.Version, binaryText(p.Size),
			orDash(strings.Join(filtersOf[strings.ToLower(p.ID.Name+"\x00"+p.ID.Version)], ",")), orDash(p.Description)})
	}
	c.table([]string{"NAME", "VERSION", "BINARY", "FILTERS", "DESCRIPTION"}, rows)
	fmt.Fprintf(stdout, "%s package(s)\n", orDash(hdr.Get("X-Total-Count")))
	return 0
}

// binaryText is a binary's size, or a plain statement that there is none (such a version cannot be
// delivered to a vehicle).
func binaryText(size int64) string {
	if size <= 0 {
		return "none"
	}
	return byteSize(size)
}

func byteSize(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	f, i := float64(n), 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%d B", n)
	}
	return fmt.Sprintf("%.1f %s", f, units[i])
}

func runPackageShow(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	c := newAdminCmd("package show", "NAME VERSION [-o json] [--server URL] [--token T]",
		"Shows one package: its metadata and binary, the filters that select its vehicles, its\ndependencies, and how many vehicles have it installed.", true, stdout, stderr)
	if code, ok := c.parse(args, 2, "the package's NAME and VERSION"); !ok {
		return code
	}
	p := "/packages/" + pathEscape(c.arg(0), c.arg(1))
	var pkg cliPackage
	raw, _, err := c.getJSON(p, &pkg)
	if err != nil {
		return c.fail(err)
	}
	if c.json() {
		c.printJSON(raw)
		return 0
	}
	var filters []struct{ Name, Expression string }
	if _, _, err := c.getJSON(p+"/filter", &filters); err != nil {
		return c.fail(err)
	}
	var deps []struct {
		Dependency struct{ Name, Version string } `json:"dependency"`
		Range      string                         `json:"range"`
	}
	if _, _, err := c.getJSON(p+"/dependencies", &deps); err != nil {
		return c.fail(err)
	}
	_, hdr, err := c.getJSON(p+"/vehicles?limit=1", nil)
	if err != nil {
		return c.fail(err)
	}
	fmt.Fprintf(stdout, "Package:      %s %s\n", pkg.ID.Name, pkg.ID.Version)
	fmt.Fprintf(stdout, "Description:  %s\n", orDash(pkg.Description))
	fmt.Fprintf(stdout, "Vendor:       %s\n", orDash(pkg.Vendor))
	if pkg.Size > 0 {
		fmt.Fprintf(stdout, "Binary:       %s, sha256 %s\n", byteSize(pkg.Size), pkg.CheckSum)
	} else {
		fmt.Fprintf(stdout, "Binary:       none: this version cannot be delivered until one is uploaded (sota package upload)\n")
	}
	fmt.Fprintf(stdout, "Installed on: %s vehicle(s)\n", orDash(hdr.Get("X-Total-Count")))
	if len(filters) == 0 {
		fmt.Fprintf(stdout, "Filters:      none: the package cannot be queued until a filter is linked (PUT /api/v1/packages/%s/filter/NAME)\n", pathEscape(pkg.ID.Name, pkg.ID.Version))
	} else {
		fmt.Fprintf(stdout, "Filters:\n")
		for _, f := range filters {
			fmt.Fprintf(stdout, "  %s: %s\n", f.Name, f.Expression)
		}
	}
	if len(deps) == 0 {
		fmt.Fprintf(stdout, "Dependencies: none\n")
	} else {
		fmt.Fprintf(stdout, "Dependencies:\n")
		for _, d := range deps {
			if d.Range != "" {
				fmt.Fprintf(stdout, "  %s %s (now %s)\n", d.Dependency.Name, d.Range, orDash(d.Dependency.Version))
			} else {
				fmt.Fprintf(stdout, "  %s %s\n", d.Dependency.Name, d.Dependency.Version)
			}
		}
	}
	return 0
}

func runPackageUpload(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	c := newAdminCmd("package upload", "--name NAME --version VERSION [--description D] [--vendor V] [--server URL] [--token T] FILE",
		"Uploads FILE as the binary of package NAME VERSION (PUT /api/v1/packages/NAME/VERSION, multipart);\n"+
			"a package the server does not know yet is registered. Prints the stored size and sha256.", false, stdout, stderr)
	name := c.fs.String("name", "", "package name")
	version := c.fs.String("version", "", "package version")
	desc := c.fs.String("description", "", "description, stored with the package")
	vendor := c.fs.String("vendor", "", "vendor, stored with the package")
	c.require("name", "version")
	if code, ok := c.parse(args, 1, "one FILE to upload"); !ok {
		return code
	}
	f, err := os.Open(c.arg(0))
	if err != nil {
		return c.fail(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return c.fail(err)
	}
	if !st.Mode().IsRegular() {
		return c.fail(fmt.Errorf("%s is not a regular file", c.arg(0)))
	}
	// Stream the multipart body: a binary of gigabytes is never held in memory.
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		part, err := mw.CreateFormFile("file", filepath.Base(f.Name()))
		if err == nil {
			_, err = io.Copy(part, f)
		}
		if err == nil {
			err = mw.Close()
		}
		pw.CloseWithError(err)
	}()
	q := url.Values{}
	if *desc != "" {
		q.Set("description", *desc)
	}
	if *vendor != "" {
		q.Set("vendor", *vendor)
	}
	p := "/packages/" + pathEscape(*name, *version)
	target := p
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	if _, _, err := c.call(http.MethodPut, target, pr, mw.FormDataContentType()); err != nil {
		pr.CloseWithError(err)
		return c.fail(err)
	}
	var pkg cliPackage
	if _, _, err := c.getJSON(p, &pkg); err != nil {
		return c.fail(err)
	}
	fmt.Fprintf(stdout, "Uploaded %s %s: %s (%s bytes), sha256 %s\n", pkg.ID.Name, pkg.ID.Version, byteSize(pkg.Size), strconv.FormatInt(pkg.Size, 10), pkg.CheckSum)
	return 0
}
