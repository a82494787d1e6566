package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"sota/auth"
	"sota/errs"
	"sota/store"
)

// runAdmin runs `sotad admin COMMAND`: maintenance on the store of a stopped server.
func runAdmin(args []string, getenv func(string) string, stderr io.Writer) error {
	usage := func(w io.Writer) {
		fmt.Fprint(w, "Usage: sotad admin reset-password --user NAME [--data DIR] [--store STORE] [--password PW]\n\n"+
			"Maintenance on the store of a stopped server (a running sotad holds the store's lock).\n\n"+
			"Commands:\n  reset-password   set an account's password and end its sessions\n")
	}
	if len(args) == 0 {
		usage(stderr)
		return errUsage
	}
	switch args[0] {
	case "-h", "--help", "help":
		usage(stdout)
		return flag.ErrHelp
	case "reset-password":
		return resetPassword(args[1:], getenv, stderr)
	}
	usage(stderr)
	return fmt.Errorf("unknown admin command %q", args[0])
}

// errUsage is a usage error whose message was already printed; main exits 2.
var errUsage = errors.New("usage")

func resetPassword(args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("sotad admin reset-password", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "./data", "data directory of the stopped server ($SOTA_DATA)")
	storeSpec := fs.String("store", "badger", "the server's store: badger (in --data), badger:DIR, or a PostgreSQL URL ($SOTA_STORE)")
	user := fs.String("user", "", "account whose password to set (required)")
	password := fs.String("password", "", "the new password, 8 or more characters ($SOTA_ADMIN_PASSWORD; generated and printed when empty)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: sotad admin reset-password --user NAME [--data DIR] [--store STORE] [--password PW]\n\n"+
			"Sets the password of account NAME in the store of a stopped server and ends the account's\n"+
			"sessions (its API tokens stay valid). Without --password a password is generated and printed.\n"+
			"A running server holds the store's lock: stop it first, or use PUT /api/v1/accounts/NAME/password.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := parseSubcommand(fs, args, stdout, "admin reset-password"); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["data"] && getenv("SOTA_DATA") != "" {
		*data = getenv("SOTA_DATA")
	}
	if !set["store"] && getenv("SOTA_STORE") != "" {
		*storeSpec = getenv("SOTA_STORE")
	}
	if !set["password"] && getenv("SOTA_ADMIN_PASSWORD") != "" {
		*password = getenv("SOTA_ADMIN_PASSWORD")
	}
	if *user == "" {
		return errors.New("admin reset-password: --user is required (the account whose password to set)")
	}
	if err := store.CheckSpec(*storeSpec); err != nil {
		return fmt.Errorf("admin reset-password: --store: %v", err)
	}
	db, err := store.OpenStore(*storeSpec, *data, store.Options{GCInterval: -1})
	where := *data // named in the messages below
	if store.IsURL(*storeSpec) {
		where = "the PostgreSQL store"
	}
	if errors.Is(err, store.ErrLocked) {
		return fmt.Errorf("admin reset-password: the store in %s is in use by a running sotad: stop it first, or change the password through the server with PUT /api/v1/accounts/%s/password", *data, *user)
	}
	if err != nil {
		return fmt.Errorf("admin reset-password: %w", err)
	}
	defer db.Close()
	svc := auth.New(db)
	generated := ""
	if *password == "" {
		generated = auth.GeneratePassword()
		*password = generated
	}
	// whoever runs this on the server machine holds the store: an admin
	if err := svc.SetPassword(auth.Principal{Role: auth.RoleAdmin}, *user, *password); err != nil {
		if errs.Is(err, "missing_account") {
			names := []string{}
			if accs, err := svc.Accounts(); err == nil {
				for _, a := range accs {
					names = append(names, a.Username)
				}
			}
			if len(names) == 0 {
				return fmt.Errorf("admin reset-password: the store in %s has no accounts: start sotad with --admin-user and --admin-password to create the first one", where)
			}
			return fmt.Errorf("admin reset-password: no account %q in %s (accounts: %s)", *user, where, strings.Join(names, ", "))
		}
		return fmt.Errorf("admin reset-password: %w", err)
	}
	if generated != "" {
		fmt.Fprintf(stdout, "New password for account %q: %s\n", *user, generated)
	} else {
		fmt.Fprintf(stdout, "Password of account %q changed; its sessions ended.\n", *user)
	}
	return nil
}

// parseSubcommand parses the flags of a subcommand: its help goes to stdout when asked for, a bad flag
// is errUsage (the flag package has printed why), and an argument left over is an error naming it.
func parseSubcommand(fs *flag.FlagSet, args []string, stdout io.Writer, name string) error {
	for _, a := range args {
		if a == "-h" || a == "--help" || a == "-help" {
			fs.SetOutput(stdout)
			break
		}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q", name, fs.Arg(0))
	}
	return nil
}
