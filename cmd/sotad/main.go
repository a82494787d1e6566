// Command sotad is the SOTA server: it opens the Badger store in --data, wires the domain services
// and serves the HTTP API, the admin UI and the device API until SIGINT or SIGTERM.
// `sotad admin reset-password --user NAME` sets an account's password in the store of a stopped server.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"sota/api"
	"sota/auth"
	"sota/engine"
	"sota/internal/memlimit"
	"sota/internal/version"
	"sota/policy"
	"sota/resolver"
	"sota/signing"
	"sota/store"
)

// Config is the server configuration: flags, each also settable as SOTA_<NAME> in the environment.
type Config struct {
	Listen string
	Data   string
	Store  string
	// BlobStore is --blob-store: local, db, or empty for the store's default
	BlobStore string
	// Migrate is set by the migrate command (`sotad --store URL migrate [--dry-run]`)
	Migrate, MigrateDryRun bool
	Auth                   string
	AdminUser              string
	AdminPassword          string
	TLSCert                string
	TLSKey                 string
	TLS                    string
	WakeupURL              string
	Examples               bool
	ChunkSize              int
	RVIURL                 string
	LogLevel               string
	MemoryLimit            string
	Scheduler              time.Duration
	ReconnectInterval      time.Duration
	WebhookTimeout         time.Duration
	Version                bool
	Signing                string
	TUFRoot                string
	DDITenant              string
	DDIPoll                string
	RVIToken               string
	RVIAckTimeout          time.Duration
	RVIAdvertiseURL        string
	TrustedProxy           string
	MaxConns               int
	LogFormat              string
	MetricsListen          string
}

// defaultListen is loopback only: a server reachable from other machines is a choice (--listen :8080).
const defaultListen = "127.0.0.1:8080"

// stdout is where --version and the admin commands print their answer (tests replace it).
var stdout io.Writer = os.Stdout

func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("sotad", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.Listen, "listen", defaultListen, "address to listen on (:8080 for every interface)")
	fs.StringVar(&c.Data, "data", "./data", "data directory (Badger store and package binaries)")
	fs.StringVar(&c.Store, "store", "badger", "badger (embedded, in --data), badger:DIR, or a PostgreSQL URL postgres://user:pass@host:port/db?sslmode=... (schema created and migrated at start; search_path=SCHEMA picks the schema)")
	fs.StringVar(&c.BlobStore, "blob-store", "", "where package binaries live: local (files in --data) or db (content-addressed chunks in the database, so every replica serves them); default local with Badger, db with PostgreSQL")
	fs.StringVar(&c.Auth, "auth", "on", "on, or none for local development and tests only")
	fs.StringVar(&c.AdminUser, "admin-user", "admin", "first admin account")
	fs.StringVar(&c.AdminPassword, "admin-password", "", "first admin password (generated and printed once when empty)")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "TLS certificate file")
	fs.StringVar(&c.TLSKey, "tls-key", "", "TLS key file")
	fs.StringVar(&c.TLS, "tls", "", "self-signed: generate a certificate in --data at first start")
	fs.StringVar(&c.WakeupURL, "wakeup-url", "", "where signed wake-ups are POSTed (none: logged)")
	fs.BoolVar(&c.Examples, "examples", false, "load the example fleet into an empty store")
	fs.IntVar(&c.ChunkSize, "chunk-size", 65536, "device transfer chunk size in bytes")
	fs.StringVar(&c.RVIURL, "rvi-url", "", "RVI node JSON-RPC endpoint; enables the RVI transport")
	fs.StringVar(&c.RVIToken, "rvi-token", "", "bearer token the RVI node must send on inbound calls (required with --rvi-url and --auth on)")
	fs.StringVar(&c.RVIAdvertiseURL, "rvi-advertise-url", "", "base URL the RVI node reaches the server at, registered for its services (with several replicas: the load balancer's; none: the listen address)")
	fs.DurationVar(&c.RVIAckTimeout, "rvi-ack-timeout", 30*time.Second, "how long the RVI transport waits for a chunk's ack before any replica sends it again (at most 5 times, then abort)")
	fs.StringVar(&c.TrustedProxy, "trusted-proxy", "", "comma-separated addresses or CIDRs of reverse proxies whose X-Forwarded-For and X-Forwarded-Proto are believed (none: ignored)")
	fs.IntVar(&c.MaxConns, "max-connections", api.DefaultLimits().MaxConns, "connections served at once; more wait")
	fs.StringVar(&c.LogFormat, "log-format", "text", "text, or json (one JSON object a line)")
	fs.StringVar(&c.MetricsListen, "metrics-listen", "", "separate address serving /metrics without auth (none: /metrics on --listen for admin or operator credentials)")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.MemoryLimit, "memory-limit", memlimit.Default, "soft memory limit of the Go runtime (e.g. 1536MiB, 2GiB, or off); GOMEMLIMIT wins when set")
	fs.StringVar(&c.Signing, "signing", "off", "on: signed update metadata (TUF image repository and per-vehicle director); queuing needs signed targets")
	fs.StringVar(&c.TUFRoot, "tuf-root", "", "the image repository's root.json (from `sota tuf init`), read with targets.json and the online snapshot and timestamp keys next to it at the first start with --signing on")
	fs.StringVar(&c.DDITenant, "ddi-tenant", api.DefaultDDITenant, "hawkBit DDI tenant of the device paths /<tenant>/controller/v1/<vin> (compared case-insensitively)")
	fs.StringVar(&c.DDIPoll, "ddi-poll", api.FormatDDIPoll(api.DefaultDDIPoll), "polling interval hawkBit DDI devices are told (HH:MM:SS)")
	fs.DurationVar(&c.Scheduler, "scheduler-interval", 30*time.Second, "how often expired updates are purged, idle vehicles with work are woken, and campaigns queue retries, take late-matching vehicles and evaluate their gates")
	fs.DurationVar(&c.ReconnectInterval, "reconnect-interval", 5*time.Minute, "a vehicle woken (or disconnected) within it is not woken again, by this or any other replica")
	fs.DurationVar(&c.WebhookTimeout, "webhook-timeout", engine.DefaultWebhookTimeout, "how long a webhook receiver may take to answer a delivery (a slower answer is retried); no other replica sends the same delivery for about twice as long")
	fs.BoolVar(&c.Version, "version", false, "print the version and the commit it was built from, and exit")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: sotad [flags]\n       sotad admin reset-password --user NAME [--data DIR] [--store STORE] [--password PW]\n"+
			"       sotad --store URL migrate [--dry-run]   apply (or, with --dry-run, print) the PostgreSQL store's pending schema migrations\n"+
			"       sotad copy --from STORE --to STORE   (move to PostgreSQL, or take a backup: sotad copy --help)\n\n"+
			"Every flag can also be set as SOTA_<FLAG> in the environment\n(e.g. SOTA_LISTEN, SOTA_DATA, SOTA_ADMIN_PASSWORD); a flag on the command line wins.\n\n"+
			"--admin-user and --admin-password create the first account of an empty store only; to change a\n"+
			"password later, stop the server and run `sotad admin reset-password`, or call\n"+
			"PUT /api/v1/accounts/NAME/password.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	set := map[string]bool{}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 && fs.Arg(0) == "migrate" {
		mfs := flag.NewFlagSet("sotad migrate", flag.ContinueOnError)
		mfs.SetOutput(stderr)
		mfs.BoolVar(&c.MigrateDryRun, "dry-run", false, "print the pending migrations (names and SQL) without applying them")
		mfs.Func("store", "the store (as sotad --store)", func(v string) error { return fs.Set("store", v) })
		if err := mfs.Parse(fs.Args()[1:]); err != nil {
			return c, err
		}
		if mfs.NArg() > 0 {
			return c, fmt.Errorf("migrate: unexpected argument %q", mfs.Arg(0))
		}
		c.Migrate = true
	} else if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] {
			return
		}
		name := "SOTA_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(name); v != "" {
			if err := f.Value.Set(v); err != nil && envErr == nil {
				envErr = fmt.Errorf("%s=%q: %v", name, v, err)
			}
		}
	})
	if envErr != nil {
		return c, envErr
	}
	if err := store.CheckSpec(c.Store); err != nil {
		return c, fmt.Errorf("--store: %v", err)
	}
	switch c.Auth {
	case "on", "none":
	default:
		return c, fmt.Errorf("--auth must be on or none, not %q", c.Auth)
	}
	if c.TLS != "" && c.TLS != "self-signed" {
		return c, fmt.Errorf("--tls must be self-signed, not %q", c.TLS)
	}
	if c.TLS != "" && c.TLSCert != "" {
		return c, errors.New("--tls=self-signed and --tls-cert exclude each other")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return c, errors.New("--tls-cert and --tls-key go together")
	}
	switch c.Signing {
	case "on", "off":
	default:
		return c, fmt.Errorf("--signing must be on or off, not %q", c.Signing)
	}
	if c.Scheduler < 10*time.Millisecond {
		return c, fmt.Errorf("--scheduler-interval must be at least 10ms, not %s", c.Scheduler)
	}
	if c.WebhookTimeout < 100*time.Millisecond {
		return c, fmt.Errorf("--webhook-timeout must be at least 100ms, not %s", c.WebhookTimeout)
	}
	if c.ReconnectInterval < time.Millisecond {
		return c, fmt.Errorf("--reconnect-interval must be at least 1ms, not %s", c.ReconnectInterval)
	}
	if _, err := memlimit.Parse(c.MemoryLimit); err != nil {
		return c, fmt.Errorf("--memory-limit: %v", err)
	}
	if !validTenant(c.DDITenant) {
		return c, fmt.Errorf("--ddi-tenant must be 1-64 letters, digits, '-', '_' or '.' and not the first part of another path (api, assets, login, …), not %q", c.DDITenant)
	}
	if _, err := api.ParseDDIPoll(c.DDIPoll); err != nil {
		return c, fmt.Errorf("--ddi-poll: %v", err)
	}
	if u, err := url.Parse(c.RVIAdvertiseURL); c.RVIAdvertiseURL != "" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "") {
		return c, fmt.Errorf("--rvi-advertise-url must be an http or https URL, not %q", c.RVIAdvertiseURL)
	}
	if c.RVIAckTimeout < 10*time.Millisecond {
		return c, fmt.Errorf("--rvi-ack-timeout must be at least 10ms, not %s", c.RVIAckTimeout)
	}
	if c.RVIURL != "" && c.Auth == "on" && c.RVIToken == "" {
		return c, errors.New("--rvi-url with --auth on needs --rvi-token: without it anyone could call /rvi/* and rewrite a vehicle's installed software")
	}
	if err := api.CheckTrustedProxies(c.proxies()); err != nil {
		return c, fmt.Errorf("--trusted-proxy: %v", err)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return c, fmt.Errorf("--log-format must be text or json, not %q", c.LogFormat)
	}
	if c.MaxConns < 1 {
		return c, fmt.Errorf("--max-connections must be at least 1, not %d", c.MaxConns)
	}
	switch c.BlobStore {
	case "", "local", "db":
	default:
		return c, fmt.Errorf("--blob-store must be local or db, not %q", c.BlobStore)
	}
	if c.ChunkSize < 512 || c.ChunkSize > 16<<20 {
		return c, fmt.Errorf("--chunk-size must be between 512 and 16777216, not %d", c.ChunkSize)
	}
	return c, nil
}

// runMigrate is `sotad --store URL migrate [--dry-run]`: it applies the PostgreSQL store's pending
// migrations, or prints them (name and SQL) without applying them.
func runMigrate(cfg Config) error {
	if !store.IsURL(cfg.Store) {
		fmt.Fprintln(stdout, "the Badger store has no migrations (its layout version is checked at open); migrate is for a PostgreSQL --store")
		return nil
	}
	ctx := context.Background()
	if cfg.MigrateDryRun {
		pending, err := store.PendingMigrations(ctx, cfg.Store)
		if err != nil {
			return err
		}
		if len(pending) == 0 {
			fmt.Fprintln(stdout, "no pending migrations")
			return nil
		}
		fmt.Fprintf(stdout, "%d pending migration(s), not applied (--dry-run):\n", len(pending))
		for _, m := range pending {
			fmt.Fprintf(stdout, "\n-- %s\n%s", m.Name, m.SQL)
			if !strings.HasSuffix(m.SQL, "\n") {
				fmt.Fprintln(stdout)
			}
		}
		return nil
	}
	applied, err := store.Migrate(ctx, cfg.Store)
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintln(stdout, "no pending migrations")
	}
	for _, m := range applied {
		fmt.Fprintf(stdout, "applied %s\n", m.Name)
	}
	return nil
}

// validTenant accepts a DDI tenant that is one path segment of plain characters and not the first
// segment of the server's other paths.
func validTenant(s string) bool {
	if len(s) == 0 || len(s) > 64 || s == "." || s == ".." {
		return false
	}
	switch strings.ToLower(s) {
	case "api", "assets", "login", "logout", "healthz", "index.html", "rvi", "metrics":
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func (c Config) proxies() []string {
	if c.TrustedProxy == "" {
		return nil
	}
	return strings.Split(c.TrustedProxy, ",")
}

// baseContext is the parent of the serving context; tests cancel it to stop a server started by run.
var baseContext = context.Background()

// wired sees the finished HTTP handler; tests use it to list the registered routes.
var wired = func(http.Handler) {}

func main() {
	if err := run(os.Args[1:], os.Getenv, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "sotad:", err)
		os.Exit(1)
	}
}

func run(args []string, getenv func(string) string, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "admin" {
		return runAdmin(args[1:], getenv, stderr)
	}
	if len(args) > 0 && args[0] == "copy" {
		return runCopy(args[1:], getenv, stderr)
	}
	cfg, err := parseFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	if cfg.Version {
		fmt.Fprintln(stdout, version.Read().String("sotad"))
		return nil
	}
	if cfg.Migrate {
		return runMigrate(cfg)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return fmt.Errorf("--log-level: %v", err)
	}
	var lh slog.Handler = slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})
	if cfg.LogFormat == "json" {
		lh = slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level})
	}
	log := slog.New(lh)
	slog.SetDefault(log)
	limit, err := memlimit.Apply(cfg.MemoryLimit)
	if err != nil {
		return fmt.Errorf("--memory-limit: %v", err)
	}
	log.Debug("soft memory limit", "bytes", limit)

	// the data directory holds password hashes, token hashes and the wake-up signing key: everything
	// this process creates is for its own user only, and what an older version left readable is fixed
	syscall.Umask(0o077)
	if err := restrictDataDir(cfg.Data); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	db, err := store.OpenStore(cfg.Store, cfg.Data, store.Options{})
	if err != nil {
		ln.Close()
		return err
	}
	defer db.Close()

	if cfg.TLS == "self-signed" {
		cert, key, created, err := selfSignedCert(cfg.Data)
		if err != nil {
			ln.Close()
			return fmt.Errorf("self-signed certificate: %w", err)
		}
		if created {
			log.Info("generated a self-signed TLS certificate", "cert", cert)
		}
		cfg.TLSCert, cfg.TLSKey = cert, key
	}
	generated, created, err := auth.New(db).Bootstrap(cfg.AdminUser, cfg.AdminPassword)
	if err != nil {
		ln.Close()
		return fmt.Errorf("first admin account %q: %w", cfg.AdminUser, err)
	}
	if created {
		log.Info("created the first admin account", "user", cfg.AdminUser)
	} else if cfg.AdminPassword != "" {
		names := []string{}
		if accs, err := auth.New(db).Accounts(); err == nil {
			for _, a := range accs {
				names = append(names, a.Username)
			}
		}
		log.Warn("--admin-password ignored: the store already has accounts, so no account was created and no password changed; "+
			"to set a password, stop sotad and run `sotad admin reset-password --user NAME --data "+cfg.Data+"`, or call PUT /api/v1/accounts/NAME/password",
			"accounts", strings.Join(names, ","))
	}
	if generated != "" {
		fmt.Fprintf(stderr, "\n  Generated password for admin account %q (shown only once): %s\n  Change it under Settings in the admin UI, with PUT /api/v1/accounts/%s/password, or on a\n  stopped server with: sotad admin reset-password --user %s --data %s\n\n", cfg.AdminUser, generated, cfg.AdminUser, cfg.AdminUser, cfg.Data)
	}

	if cfg.Auth == "none" {
		warnAuthOff(stderr, log, cfg.Listen, ln.Addr())
	}
	rs, err := resolver.New(db)
	if err != nil {
		return err
	}
	if err := loadExamples(cfg.Examples, rs, log); err != nil {
		return fmt.Errorf("--examples: %w", err)
	}
	blobs, err := openBlobs(cfg, db)
	if err != nil {
		return err
	}
	eng, err := engine.New(db, rs, engine.Options{Blobs: blobs, WakeupURL: wakeupURL(cfg, ln), ReconnectInterval: cfg.ReconnectInterval, WebhookTimeout: cfg.WebhookTimeout, Logger: log})
	if err != nil {
		return err
	}
	defer eng.StartWebhooks(time.Second)() // after the server stops, before the store closes
	sched := eng.StartScheduler(cfg.Scheduler)
	defer sched.Stop() // before the store closes (deferred earlier)
	var sig *signing.Service
	if cfg.Signing == "on" {
		if sig, err = signing.New(db, eng, signing.Options{RootFile: cfg.TUFRoot, Logger: log}); err != nil {
			return err
		}
		defer sig.Start(cfg.Scheduler)()
		log.Info("signing on: queuing needs binaries in the signed image targets")
	} else if cfg.TUFRoot != "" {
		log.Warn("--tuf-root is ignored with --signing off")
	}

	handler, apiSrv, err := api.New(api.Config{AuthNone: cfg.Auth == "none", ChunkSize: cfg.ChunkSize, Logger: log, TrustedProxies: cfg.proxies(), MetricsSeparate: cfg.MetricsListen != "",
		RVI: api.RVIConfig{NodeURL: cfg.RVIURL, Token: cfg.RVIToken, SelfURL: rviSelfURL(cfg, ln), AckTimeout: cfg.RVIAckTimeout}, DDI: ddiConfig(cfg)},
		api.Deps{Auth: auth.New(db), Engine: eng, Resolver: rs, Filters: rs, Policy: policy.NewService(db), Signing: sig, StoreSize: db.DiskSize})
	if err != nil {
		ln.Close()
		return err
	}
	defer apiSrv.Close() // the RVI resends end before the scheduler and the store (deferred earlier)
	wired(handler)
	limits := api.DefaultLimits()
	limits.MaxConns = cfg.MaxConns
	srv := api.NewHTTPServer(handler, limits)
	ln = api.LimitListener(ln, limits)
	if cfg.MetricsListen != "" {
		mln, err := net.Listen("tcp", cfg.MetricsListen)
		if err != nil {
			ln.Close()
			return fmt.Errorf("--metrics-listen %s: %w", cfg.MetricsListen, err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", apiSrv.MetricsHandler())
		msrv := api.NewHTTPServer(mux, api.DefaultLimits())
		go msrv.Serve(api.LimitListener(mln, api.Limits{MaxConns: 64}))
		defer msrv.Close()
		log.Info("metrics listening", "addr", mln.Addr().String())
	}

	ctx, stop := signal.NotifyContext(baseContext, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() {
		log.Info("sotad listening", "addr", ln.Addr().String(), "data", cfg.Data, "store", db.Backend(), "blobStore", blobs.Kind(), "tls", cfg.TLSCert != "")
		if cfg.TLSCert != "" {
			errc <- srv.ServeTLS(ln, cfg.TLSCert, cfg.TLSKey)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	case <-ctx.Done():
		log.Info("shutting down")
		sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			return fmt.Errorf("shutdown: %w", err)
		}
	}
	return nil
}

// loopback tells whether a listening address is reachable from this machine only.
func loopback(a net.Addr) bool {
	t, ok := a.(*net.TCPAddr)
	return ok && t.IP.IsLoopback()
}

// warnAuthOff says that authentication is off: a warning on a loopback address, and a banner besides
// on an address other machines can reach.
func warnAuthOff(stderr io.Writer, log *slog.Logger, listen string, addr net.Addr) {
	if loopback(addr) {
		log.Warn("AUTHENTICATION IS OFF (--auth=none): the admin API is open to anyone on this machine at " + addr.String() + "; use only for local development and tests")
		return
	}
	warnOpen(stderr, addr.String())
	log.Warn("AUTHENTICATION IS OFF ON A NON-LOOPBACK ADDRESS (--auth=none, --listen " + listen + "): anyone who can reach " + addr.String() + " can change the fleet and push software to it")
}

// warnOpen prints a banner that cannot be missed: the admin API is open to the network.
func warnOpen(w io.Writer, addr string) {
	line := strings.Repeat("!", 78)
	fmt.Fprintf(w, "\n%s\n!! WARNING: authentication is OFF and sotad listens on %s,\n"+
		"!! which is reachable from other machines: anyone who can reach it can change the fleet\n"+
		"!! and push software to every vehicle. Use --auth=on, or --listen 127.0.0.1:PORT.\n%s\n\n", line, addr, line)
}

// ddiConfig is the hawkBit DDI part of the API configuration (the flags were checked by parseFlags).
func ddiConfig(cfg Config) api.DDIConfig {
	poll, _ := api.ParseDDIPoll(cfg.DDIPoll)
	return api.DDIConfig{Tenant: cfg.DDITenant, Poll: poll}
}

// blobStoreKind is the --blob-store in effect: the flag, else local with Badger and db with PostgreSQL.
func blobStoreKind(cfg Config) string {
	if cfg.BlobStore != "" {
		return cfg.BlobStore
	}
	if store.IsURL(cfg.Store) {
		return "db"
	}
	return "local"
}

// openBlobs opens the blob store --blob-store names: chunks in db, or files in the blobs directory
// next to the Badger store (--data/blobs, or DIR/blobs with --store badger:DIR, as `sotad copy`
// writes them), or in --data/blobs with PostgreSQL. A store's binaries stay where they were uploaded:
// `sotad copy --to-blob-store` moves them.
func openBlobs(cfg Config, db *store.DB) (store.BlobStore, error) {
	if blobStoreKind(cfg) == "db" {
		return store.NewDBBlobs(db), nil
	}
	dir := cfg.Data
	if d, ok := strings.CutPrefix(cfg.Store, "badger:"); ok {
		dir = d
	}
	return store.NewLocalBlobs(filepath.Join(dir, "blobs"))
}

// restrictDataDir creates the data directory for this user only (0700), and takes group and other
// access away from what it already holds (directories 0700, files 0600).
func restrictDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data directory %s: %w", dir, err)
	}
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(p, info.Mode().Perm()&^0o077); err != nil {
				return fmt.Errorf("data directory: %w", err)
			}
		}
		return nil
	})
}
