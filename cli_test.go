package main

import (
	"bytes"
	"context"
	"database/sql"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestHelpListsEveryCommand(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		var out, errOut bytes.Buffer
		if err := run(context.Background(), args, &out, &errOut, noEnv); err != nil {
			t.Fatalf("run(%v) = %v, want nil (exit 0)", args, err)
		}
		for _, c := range commands {
			if !strings.Contains(out.String(), "\n  "+c.name+" ") {
				t.Errorf("run(%v) does not list %s:\n%s", args, c.name, out.String())
			}
		}
	}
}

func TestCommandHelpShowsItsFlags(t *testing.T) {
	for _, args := range [][]string{{"help", "pay"}, {"pay", "--help"}, {"pay", "-h"}} {
		var out, errOut bytes.Buffer
		if err := run(context.Background(), args, &out, &errOut, noEnv); err != nil {
			t.Fatalf("run(%v) = %v, want nil (exit 0)", args, err)
		}
		for _, want := range []string{"usage: entitlements pay", "-order", "-amount", "-status", "-url", "-config"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("run(%v) lacks %s:\n%s", args, want, out.String())
			}
		}
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"help", "nope"}, &out, &out, noEnv); err == nil {
		t.Error("help nope = nil, want an error naming the unknown command")
	}
	if err := run(context.Background(), []string{"nope"}, &out, &out, noEnv); err == nil || !strings.Contains(err.Error(), "entitlements help") {
		t.Errorf("run(nope) = %v, want an error pointing at entitlements help", err)
	}
}

// TestTokenOutsideTheProjectExplainsTheConfig: run where there is no
// config.yaml, a command says where it looked and how to name one.
func TestTokenOutsideTheProjectExplainsTheConfig(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	var out bytes.Buffer
	err := run(context.Background(), []string{"token", "--role", "ops", "--sub", "x"}, &out, &out, noEnv)
	if err == nil {
		t.Fatal("token without a config = nil, want an error")
	}
	for _, want := range []string{"config.yaml", dir, "--config"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

// TestServeFailsAtOnceOnABusyPort: a second instance whose port is taken
// stops before it migrates or runs a job.
func TestServeFailsAtOnceOnABusyPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dsn := filepath.Join(t.TempDir(), "e.db")
	var logs bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(context.Background(), nil, &logs, &logs, env(map[string]string{
			"ENTITLEMENTS_HTTP_ADDR": l.Addr().String(), "ENTITLEMENTS_DATABASE_DSN": dsn,
		}))
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), l.Addr().String()) {
			t.Errorf("serve on a busy port = %v, want an error naming the address", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve on a busy port did not stop")
	}
	for _, not := range []string{"scheduler started", `"job":`, `"msg":"listening"`, "database ready"} {
		if strings.Contains(logs.String(), not) {
			t.Errorf("serve on a busy port logged %s:\n%s", not, logs.String())
		}
	}
	if _, err := os.Stat(dsn); err == nil {
		t.Errorf("serve on a busy port created the database %s", dsn)
	}
}

func TestSeedReportsWhatItInserted(t *testing.T) {
	dsn := filepath.Join(t.TempDir(), "e.db")
	getenv := env(map[string]string{"ENTITLEMENTS_DATABASE_DSN": dsn})
	seedOut := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(context.Background(), append([]string{"seed", "--vehicles", "40"}, args...), &out, &out, getenv)
		return out.String(), err
	}
	out, err := seedOut()
	if err != nil {
		t.Fatalf("seed: %v\n%s", err, out)
	}
	for _, want := range []string{"warning: seeding the sqlite database " + dsn, "40 new vehicles, 0 already present", "inserted 40 vehicles"} {
		if !strings.Contains(out, want) {
			t.Errorf("first seed output lacks %q:\n%s", want, out)
		}
	}
	if out, err = seedOut(); err != nil || !strings.Contains(out, "0 new vehicles, 40 already present; inserted 0 vehicles, 0 periods, 0 orders") {
		t.Errorf("second seed = %v:\n%s", err, out)
	}

	// A vehicle that is not a seeded one: the database looks real.
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Exec(`INSERT INTO vehicles (vin, owner_id, model, activated_at, coverage_ends_at, created_at, updated_at)
		SELECT 'LSVAX4E15P2000001', owner_id, model, activated_at, coverage_ends_at, created_at, updated_at FROM vehicles LIMIT 1`)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if out, err = seedOut(); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("seed over a real vehicle = %v, want a refusal naming --force\n%s", err, out)
	}
	if out, err = seedOut("--force"); err != nil || !strings.Contains(out, "0 new vehicles, 40 already present") {
		t.Errorf("seed --force = %v:\n%s", err, out)
	}
}
