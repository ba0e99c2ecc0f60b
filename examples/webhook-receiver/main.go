// Command webhook-receiver is a minimal receiver of the service's notice
// webhooks, for trying them out locally: it checks each delivery's
// Standard Webhooks signature, prints it as one JSON line and answers 204
// (401 when the signature does not verify).
//
//	go run ./examples/webhook-receiver --addr 127.0.0.1:9000 --secret whsec_...
//
// The service sends to it when started with
// ENTITLEMENTS_NOTICES_WEBHOOK_URL=http://127.0.0.1:9000/hook and the same
// secret in notices.webhook_secret. Deduplicate on webhook-id: delivery is
// at least once.
package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"strconv"
	"strings"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "address to listen on")
	secret := flag.String("secret", "whsec_ZGV2LW9ubHktd2ViaG9vay1rZXk=", "notices.webhook_secret of the service (whsec_<base64 key>)")
	flag.Parse()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(*secret, "whsec_"))
	if err != nil {
		log.Fatalf("--secret: %v", err)
	}
	http.HandleFunc("POST /", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		id, ts := r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp")
		if !verify(key, id, ts, body, r.Header.Get("webhook-signature")) {
			log.Printf("rejected %s: bad signature or timestamp", id)
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		line, _ := json.Marshal(map[string]any{"webhook_id": id, "body": json.RawMessage(body)})
		fmt.Println(string(line))
		w.WriteHeader(http.StatusNoContent)
	})
	log.Printf("listening on %s", *addr)
	srv := &http.Server{Addr: *addr, ReadHeaderTimeout: 5 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		log.Fatal(err)
	}
}

// verify checks webhook-signature ("v1,<base64 HMAC-SHA256 of
// id.timestamp.body>", space-separated when several) and that the
// timestamp is within 5 minutes of now.
func verify(key []byte, id, ts string, body []byte, header string) bool {
	t, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(t, 0)).Abs() > 5*time.Minute {
		return false
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, sig := range strings.Fields(header) {
		if hmac.Equal([]byte(sig), []byte(want)) {
			return true
		}
	}
	return false
}
