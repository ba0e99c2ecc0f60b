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

// TestQuickstartScript runs examples/quickstart.sh, the walkthrough the
// README points newcomers to, against the built service on a fresh SQLite
// database, with a webhook URL pointing at the script's receiver. The
// script checks every status it gets; any difference fails it.
func TestQuickstartScript(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("the quickstart script takes about 15 s; skipped with -short")
	}
	for _, tool := range []string{"bash", "jq", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("examples/quickstart.sh needs %s, which is not installed (apt-get install %s)", tool, tool)
		}
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
