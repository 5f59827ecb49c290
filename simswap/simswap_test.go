package simswap

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestSwapped(t *testing.T) {
	cases := []struct {
		name    string
		status  int
		body    string
		want    bool
		wantErr bool
	}{
		{"swapped", 200, `{"swapped": true}`, true, false},
		{"not swapped", 200, `{"swapped": false}`, false, false},
		{"no field", 200, `{}`, false, true},
		{"broken json", 200, `{"swa`, false, true},
		{"server error", 500, `oops`, false, true},
		{"forbidden", 403, `{}`, false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got struct {
				PhoneNumber string `json:"phoneNumber"`
				MaxAge      int    `json:"maxAge"`
			}
			var auth string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				auth = r.Header.Get("Authorization")
				json.NewDecoder(r.Body).Decode(&got)
				w.WriteHeader(c.status)
				w.Write([]byte(c.body))
			}))
			defer srv.Close()
			cl := &Client{URL: srv.URL, Token: "tok", MaxAge: 72 * time.Hour}
			swapped, err := cl.Swapped(context.Background(), "254700000001")
			if swapped != c.want || (err != nil) != c.wantErr || (err != nil && !errors.Is(err, ErrUnavailable)) {
				t.Fatalf("Swapped = %v, %v", swapped, err)
			}
			if got.PhoneNumber != "+254700000001" || got.MaxAge != 72 || auth != "Bearer tok" {
				t.Fatalf("request = %+v auth %q", got, auth)
			}
		})
	}
}

func TestSwappedTimesOut(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release) // runs first: the hung handler returns before Close waits for it
	cl := &Client{URL: srv.URL, MaxAge: time.Hour, Timeout: 50 * time.Millisecond}
	if _, err := cl.Swapped(context.Background(), "254700000001"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v", err)
	}
}
