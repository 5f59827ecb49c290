package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/config"
	"github.com/payswitch/payswitch/tools/smscsim"
)

// startReplicatedSwitch starts a test switch whose database streams to replicaURLs.
func startReplicatedSwitch(t *testing.T, replicaURLs ...string) *testSwitch {
	t.Helper()
	sim, err := smscsim.Start(smscsim.Config{Listen: "127.0.0.1:0", Accounts: map[string]string{"payswitch": "pw"}, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	s := &testSwitch{t: t, dir: t.TempDir(), sim: sim, ttl: "5m"}
	cfg := s.config()
	for _, u := range replicaURLs {
		cfg.Database.Replicas = append(cfg.Database.Replicas, config.Replica{URL: u, SyncInterval: 50 * time.Millisecond})
	}
	a, err := startApp(context.Background(), cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	s.app, s.base = a, "http://"+a.httpAddr
	t.Cleanup(func() {
		if s.app != nil {
			s.app.Close()
		}
	})
	s.waitBound()
	return s
}

type healthReplicas struct {
	Status   string `json:"status"`
	Replicas []struct {
		Name       string  `json:"name"`
		OK         bool    `json:"ok"`
		LagSeconds float64 `json:"lag_seconds"`
		Error      string  `json:"error"`
	} `json:"replicas"`
}

func (s *testSwitch) replicaHealth() (int, healthReplicas) {
	s.t.Helper()
	var h healthReplicas
	code := s.call("GET", "/healthz", "", nil, &h)
	return code, h
}

// /healthz and /metrics show each replica and its lag; each replica's copy restores
// the books.
func TestServeReplicates(t *testing.T) {
	dirs := []string{filepath.Join(t.TempDir(), "replica-a"), filepath.Join(t.TempDir(), "replica-b")}
	s := startReplicatedSwitch(t, "file://"+dirs[0], "file://"+dirs[1])
	acc := s.open(map[string]string{"type": "wallet", "msisdn": alice, "name": "Alice"})
	s.deposit(acc.ID, 100000, "CASHIN-1")
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, h := s.replicaHealth()
		if code == http.StatusOK && h.Status == "ok" && len(h.Replicas) == 2 &&
			h.Replicas[0].OK && h.Replicas[0].LagSeconds < 1 && h.Replicas[1].OK && h.Replicas[1].LagSeconds < 1 {
			for i, r := range h.Replicas {
				if r.Name != "file://"+dirs[i] {
					t.Errorf("replica %d name %q", i, r.Name)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("healthz never showed two caught-up replicas: %d %+v", code, h)
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, err := http.Get(s.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, dir := range dirs {
		if !strings.Contains(string(body), `payswitch_replica_lag_seconds{replica="file://`+dir+`"}`) {
			t.Errorf("/metrics has no lag for %s", dir)
		}
	}
	s.stop()

	for _, dir := range dirs {
		cfg, dbPath := restoreConfig(t, "")
		if _, stderr, err := runCmd("restore", "-config", cfg, "-from", "file://"+dir); err != nil {
			t.Fatalf("restore from %s: %v\n%s", dir, err, stderr)
		}
		out := filepath.Join(t.TempDir(), "audit")
		if _, stderr, err := runCmd("export", "-config", cfg, "-out", out); err != nil {
			t.Fatalf("export: %v\n%s", err, stderr)
		}
		if _, err := os.Stat(dbPath); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(filepath.Join(out, "accounts.csv"))
		if !strings.Contains(string(b), acc.ID) {
			t.Errorf("the books restored from %s lack the account:\n%s", dir, b)
		}
	}
}

// A replica that cannot be written leaves payments alone and holds the other replica
// back in nothing; the switch says it is degraded, and why.
func TestServeWithAnUnwritableReplica(t *testing.T) {
	blocker := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(t.TempDir(), "replica")
	s := startReplicatedSwitch(t, "file://"+good, "file://"+blocker+"/replica")
	acc := s.open(map[string]string{"type": "wallet", "msisdn": alice, "name": "Alice"})
	s.deposit(acc.ID, 100000, "CASHIN-1")
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, h := s.replicaHealth()
		if code == http.StatusOK && h.Status == "degraded" && len(h.Replicas) == 2 &&
			h.Replicas[0].OK && h.Replicas[0].LagSeconds < 1 && !h.Replicas[1].OK && h.Replicas[1].Error != "" {
			break
		}
		if time.Now().After(deadline) {
			b, _ := json.Marshal(h)
			t.Fatalf("healthz: %d %s", code, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.deposit(acc.ID, 100, "CASHIN-2")
	if got := s.account(acc.ID).Balance.Posted; got != 100100 {
		t.Errorf("balance %d, want 100100", got)
	}
}
