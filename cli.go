package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"
)

// command is one subcommand of the entitlements binary.
type command struct {
	name    string
	summary string
}

// commands lists the subcommands in the order help shows them.
var commands = []command{
	{"serve", "run the HTTP service and its background jobs (the default)"},
	{"migrate", "apply pending database migrations and exit"},
	{"token", "print a bearer token for a role and subject (development and support)"},
	{"seed", "bulk-load synthetic vehicles for load tests and demos"},
	{"pay", "sign and post a payment notification for an order (development and support)"},
	{"backup", "write a consistent copy of the database"},
	{"keys", "write a new certificate signing key: keys generate --out FILE"},
}

func lookupCommand(name string) (command, bool) {
	for _, c := range commands {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// cliArgs holds every flag of every command; newFlagSet defines those of
// one command.
type cliArgs struct {
	config    string
	configSet bool // --config was given

	role, sub string // token
	ttl       time.Duration

	vehicles int // seed
	force    bool

	order  string // pay
	amount int64
	status string
	url    string

	to string // backup

	out string // keys generate
}

// newFlagSet defines cmd's flags on a new flag set whose usage text
// (for CMD --help and help CMD) is written to out.
func newFlagSet(cmd string, out io.Writer) (*flag.FlagSet, *cliArgs) {
	a := &cliArgs{}
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&a.config, "config", "config.yaml", "path of the configuration file")
	switch cmd {
	case "token":
		fs.StringVar(&a.role, "role", "", "vehicle, owner, billing, ops or carrier")
		fs.StringVar(&a.sub, "sub", "", "subject: the VIN for vehicle, the owner_id for owner, a name otherwise")
		fs.DurationVar(&a.ttl, "ttl", time.Hour, "validity")
	case "seed":
		fs.IntVar(&a.vehicles, "vehicles", 1000, "number of vehicles to load")
		fs.BoolVar(&a.force, "force", false, "seed even though the database holds vehicles that are not seeded ones")
	case "pay":
		fs.StringVar(&a.order, "order", "", "the order id (ord_...) to pay (required)")
		fs.Int64Var(&a.amount, "amount", 0, "amount in fen; 0 (the default) pays the order's amount, read from the service")
		fs.StringVar(&a.status, "status", "succeeded", "succeeded or failed")
		fs.StringVar(&a.url, "url", "", "base URL of the service (default: http:// and config http.addr)")
	case "backup":
		fs.StringVar(&a.to, "to", "", "file to write the copy to (required; must not exist)")
	case "keys":
		fs.StringVar(&a.out, "out", "", "keys generate: file to write the PEM (PKCS#8) Ed25519 private key to (required; must not exist)")
	}
	fs.Usage = func() {
		c, _ := lookupCommand(cmd)
		fmt.Fprintf(fs.Output(), "usage: entitlements %s [flags]\n\n%s.\n\nflags:\n", cmd, c.summary)
		fs.PrintDefaults()
	}
	return fs, a
}

// parseFlags parses args for cmd. It returns flag.ErrHelp, after printing
// the flags to stdout, when they ask for help.
func parseFlags(cmd string, args []string, stdout, stderr io.Writer) (*cliArgs, error) {
	fs, a := newFlagSet(cmd, stderr)
	for _, arg := range args {
		if arg == "-h" || arg == "-help" || arg == "--help" {
			fs.SetOutput(stdout)
			fs.Usage()
			return nil, flag.ErrHelp
		}
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%s: unexpected argument %q (see entitlements help %s)", cmd, fs.Arg(0), cmd)
	}
	fs.Visit(func(f *flag.Flag) { a.configSet = a.configSet || f.Name == "config" })
	return a, nil
}

// help prints the list of commands, or one command's flags.
func help(args []string, stdout io.Writer) error {
	if len(args) > 0 {
		if _, ok := lookupCommand(args[0]); !ok {
			return fmt.Errorf("unknown command %q; run entitlements help for the list", args[0])
		}
		fs, _ := newFlagSet(args[0], stdout)
		fs.Usage()
		return nil
	}
	fmt.Fprint(stdout, "entitlements decides which connected cars get in-car data and premium features.\n\n"+
		"usage: entitlements [command] [flags]\n\ncommands:\n")
	tw := tabwriter.NewWriter(stdout, 0, 0, 3, ' ', 0)
	for _, c := range commands {
		fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
	}
	tw.Flush()
	fmt.Fprint(stdout, "\nEvery command reads ./config.yaml, or the file --config names; environment\n"+
		"variables ENTITLEMENTS_* override it (see README.md).\n"+
		"Run entitlements help COMMAND (or COMMAND --help) for a command's flags.\n")
	return nil
}

// isHelp reports whether arg asks for the list of commands.
func isHelp(arg string) bool {
	switch arg {
	case "help", "-h", "-help", "--help":
		return true
	}
	return false
}

// configHint explains a missing configuration file: which path was
// looked for, from where, and how to name another one.
func configHint(err error, a *cliArgs) error {
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	abs, _ := filepath.Abs(a.config)
	if a.configSet {
		return fmt.Errorf("%w (looked for %s)", err, abs)
	}
	wd, _ := os.Getwd()
	return fmt.Errorf("no %s in the working directory %s: run from the project directory, or pass --config PATH", a.config, wd)
}
