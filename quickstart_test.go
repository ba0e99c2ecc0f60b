package main

import (
	"bytes"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// EnvQuickstartTests, when set (CI sets it), makes TestQuickstartScript
// fail instead of skipping when it cannot run: a missing tool, or -short.
const EnvQuickstartTests = "ENTITLEMENTS_TEST_QUICKSTART"

// quickstartPrereqs says why TestQuickstartScript cannot run: skip when it
// may be skipped, fail when required (EnvQuickstartTests) and it cannot
// run; both empty when it can.
func quickstartPrereqs(short, required bool, lookPath func(string) (string, error)) (skip, fail string) {
	why := ""
	if short && !required {
		why = "the quickstart script takes about 15 s; skipped with -short"
	}
	for _, tool := range []string{"bash", "jq", "curl"} {
		if why != "" {
			break
		}
		if _, err := lookPath(tool); err != nil {
			why = "examples/quickstart.sh needs " + tool + ", which is not installed (apt-get install " + tool + ")"
		}
	}
	if why != "" && required {
		return "", why + "; " + EnvQuickstartTests + " is set, so the quickstart must run"
	}
	return why, ""
}

// TestQuickstartPrereqs: with EnvQuickstartTests set, a missing tool
// fails the quickstart test rather than skipping it; without it, the test
// skips.
func TestQuickstartPrereqs(t *testing.T) {
	noJQ := func(tool string) (string, error) {
		if tool == "jq" {
			return "", exec.ErrNotFound
		}
		return "/usr/bin/" + tool, nil
	}
	all := func(tool string) (string, error) { return "/usr/bin/" + tool, nil }
	for _, c := range []struct {
		name            string
		short, required bool
		look            func(string) (string, error)
		skip, fail      bool
	}{
		{"missing tool", false, false, noJQ, true, false},
		{"missing tool, required", false, true, noJQ, false, true},
		{"short", true, false, all, true, false},
		{"short, required", true, true, all, false, false},
		{"all there", false, true, all, false, false},
	} {
		skip, fail := quickstartPrereqs(c.short, c.required, c.look)
		if (skip != "") != c.skip || (fail != "") != c.fail {
			t.Errorf("%s: skip %q, fail %q; want skip %v, fail %v", c.name, skip, fail, c.skip, c.fail)
		}
	}
}

// TestQuickstartScript runs examples/quickstart.sh, the walkthrough the
// README points newcomers to, against the built service on a fresh SQLite
// database, with a webhook URL pointing at the script's receiver. The
// script checks every status it gets; any difference fails it.
func TestQuickstartScript(t *testing.T) {
	t.Parallel()
	skip, fail := quickstartPrereqs(testing.Short(), os.Getenv(EnvQuickstartTests) != "", exec.LookPath)
	if fail != "" {
		t.Fatal(fail)
	}
	if skip != "" {
		t.Skip(skip)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "entitlements")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	config, err := os.ReadFile("config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	configPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(configPath, config, 0o600); err != nil {
		t.Fatal(err)
	}
	addr, hookAddr := freeAddr(t), freeAddr(t)
	// Secrets other than the shipped ones: the script's CLI calls must
	// take them from the environment, as the service does.
	shared := []string{
		"ENTITLEMENTS_HTTP_ADDR=" + addr,
		"ENTITLEMENTS_AUTH_TOKEN_SECRET=quickstart-token-secret",
		"ENTITLEMENTS_PAYMENTS_WEBHOOK_SECRET=quickstart-payment-secret",
	}
	svc := exec.Command(bin, "--config", configPath)
	svc.Env = append(os.Environ(), append(shared,
		"ENTITLEMENTS_DATABASE_DRIVER=sqlite",
		"ENTITLEMENTS_DATABASE_DSN="+filepath.Join(dir, "data", "e.db"),
		"ENTITLEMENTS_NOTICES_WEBHOOK_URL=http://"+hookAddr+"/hook",
		"ENTITLEMENTS_SCHEDULER_DELIVER=@every 1s",
	)...)
	var svcLog bytes.Buffer
	svc.Stdout, svc.Stderr = &svcLog, &svcLog
	if err := svc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		svc.Process.Signal(syscall.SIGTERM)
		svc.Wait()
	})
	waitReady(t, "http://"+addr+"/readyz", &svcLog)

	script := exec.Command("bash", "examples/quickstart.sh")
	script.Env = append(os.Environ(), append(shared, "ENTITLEMENTS="+bin, "WEBHOOK_ADDR="+hookAddr)...)
	out, err := script.CombinedOutput()
	if err != nil {
		t.Fatalf("examples/quickstart.sh: %v\n%s\nservice log:\n%s", err, out, svcLog.String())
	}
	if !strings.Contains(string(out), "every step answered as expected") || strings.Contains(string(out), "SKIPPED") {
		t.Fatalf("examples/quickstart.sh did not run every step:\n%s", out)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitReady(t *testing.T, url string, log *bytes.Buffer) {
	t.Helper()
	for i := 0; i < 200; i++ {
		if res, err := http.Get(url); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the service did not become ready at %s:\n%s", url, log.String())
}
