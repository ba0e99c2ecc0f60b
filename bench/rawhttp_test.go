package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRawConnReadsEveryResponseShape(t *testing.T) {
	big := strings.Repeat("x", 10_000) // past net/http's 2 KiB buffer: sent chunked
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case "/small":
			w.Write([]byte(`{"ok":true}`))
		case "/big":
			w.Write([]byte(big))
		case "/close":
			w.Header().Set("Connection", "close")
			w.Write([]byte("bye"))
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	defer srv.Close()
	c := newRawConn(strings.TrimPrefix(srv.URL, "http://"))
	for i, tc := range []struct {
		path, token string
		code        int
		body        string
	}{
		{"/small", "tok", 200, `{"ok":true}`},
		{"/big", "tok", 200, big},
		{"/small", "bad", 401, "no token\n"},
		{"/close", "tok", 200, "bye"},
		{"/small", "tok", 200, `{"ok":true}`}, // a new connection after the close
		{"/empty", "tok", 204, ""},
		{"/big", "tok", 200, big},
	} {
		code, err := c.get(tc.path, tc.token)
		if err != nil {
			t.Fatalf("request %d, GET %s: %v", i, tc.path, err)
		}
		if code != tc.code || string(c.body) != tc.body {
			t.Errorf("request %d, GET %s = %d %.40q (%d bytes), want %d %.40q (%d bytes)", i, tc.path, code, c.body, len(c.body), tc.code, tc.body, len(tc.body))
		}
	}
}
