package apiclient

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestDo(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(401)
			w.Write([]byte(`{"error":{"code":"unauthorized"}}`))
			return
		}
		w.WriteHeader(201)
		w.Write([]byte(`{"id":"AC1"}`))
	}))
	defer srv.Close()
	c := &Client{Base: srv.URL, Token: "tok", HTTP: srv.Client()}
	var out struct{ ID string }
	if err := c.Do(context.Background(), "POST", "/x", map[string]string{"a": "b"}, 201, &out); err != nil || out.ID != "AC1" {
		t.Fatalf("Do = %v %+v", err, out)
	}
	c.Token = "bad"
	err := c.Do(context.Background(), "GET", "/x", nil, 200, nil)
	if err == nil || !strings.Contains(err.Error(), "status 401") || !strings.Contains(err.Error(), "unauthorized") {
		t.Fatalf("wrong status: %v", err)
	}
}
