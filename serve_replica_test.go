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

// startReplicatedSwitch starts a test switch whose database streams to replicaURL.
func startReplicatedSwitch(t *testing.T, replicaURL string) *testSwitch {
	t.Helper()
	sim, err := smscsim.Start(smscsim.Config{Listen: "127.0.0.1:0", Accounts: map[string]string{"payswitch": "pw"}, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	s := &testSwitch{t: t, dir: t.TempDir(), sim: sim, ttl: "5m"}
	cfg := s.config()
	cfg.Database.Replicas = []config.Replica{{URL: replicaURL, SyncInterval: 50 * time.Millisecond}}
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

// /healthz and /metrics show the replica and its lag; its copy restores the books.
func TestServeReplicates(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "replica")
	s := startReplicatedSwitch(t, "file://"+dir)
	acc := s.open(map[string]string{"type": "wallet", "msisdn": alice, "name": "Alice"})
	s.deposit(acc.ID, 100000, "CASHIN-1")
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, h := s.replicaHealth()
		if code == http.StatusOK && h.Status == "ok" && len(h.Replicas) == 1 && h.Replicas[0].OK && h.Replicas[0].LagSeconds < 1 {
			if h.Replicas[0].Name != "file://"+dir {
				t.Errorf("replica name %q", h.Replicas[0].Name)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("healthz never showed a caught-up replica: %d %+v", code, h)
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, err := http.Get(s.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `payswitch_replica_lag_seconds{replica="file://`+dir+`"}`) {
		t.Errorf("/metrics has no replica lag")
	}
	s.stop()

	cfg, dbPath := restoreConfig(t, "")
	if _, stderr, err := runCmd("restore", "-config", cfg, "-from", "file://"+dir); err != nil {
		t.Fatalf("restore: %v\n%s", err, stderr)
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
		t.Errorf("the restored books lack the account:\n%s", b)
	}
}

// A replica that cannot be written leaves payments alone; the switch says it is
// degraded, and why.
func TestServeWithAnUnwritableReplica(t *testing.T) {
	blocker := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s := startReplicatedSwitch(t, "file://"+blocker+"/replica")
	acc := s.open(map[string]string{"type": "wallet", "msisdn": alice, "name": "Alice"})
	s.deposit(acc.ID, 100000, "CASHIN-1")
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, h := s.replicaHealth()
		if code == http.StatusOK && h.Status == "degraded" && len(h.Replicas) == 1 && !h.Replicas[0].OK && h.Replicas[0].Error != "" {
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
