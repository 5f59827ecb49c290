package main

import (
	"context"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/settlement"
)

// The overview's database card and /healthz show when the store last checkpointed.
func TestConsoleOverviewShowsLastCheckpoint(t *testing.T) {
	s := startConsoleSwitch(t)
	acc := s.open(map[string]string{"type": "wallet", "msisdn": alice, "name": "Alice"})
	s.deposit(acc.ID, 1000, "CASH-1")
	written := time.Now()
	b := s.browser()
	b.signIn(opsToken)
	deadline := time.Now().Add(10 * time.Second)
	for {
		var h struct {
			Database struct {
				LastCheckpoint string `json:"last_checkpoint"`
			} `json:"database"`
		}
		s.call("GET", "/healthz", "", nil, &h)
		at, err := time.Parse(time.RFC3339, h.Database.LastCheckpoint)
		if err == nil && at.After(written) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz never showed a checkpoint after the deposit: %q %v", h.Database.LastCheckpoint, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, page := b.get("/console/live")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "last checkpoint ") || !strings.Contains(page, " s ago") {
		t.Fatalf("overview: %d, no last checkpoint:\n%s", resp.StatusCode, page)
	}
}

// The overview lists each replica with its lag, and none without one.
func TestConsoleOverviewShowsReplicas(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "replica")
	s := &consoleSwitch{startReplicatedSwitch(t, "file://"+dir)}
	b := s.browser()
	b.signIn(opsToken)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, page := b.get("/console/live")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("overview: %d\n%s", resp.StatusCode, page)
		}
		if strings.Contains(page, "<h2>Replicas</h2>") && strings.Contains(page, "file://"+dir) &&
			strings.Contains(page, `<span class="ok">ok</span>`) && regexp.MustCompile(`<td class="num">\d+\.\d s</td>`).MatchString(page) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the overview never showed the replica caught up with its lag:\n%s", page)
		}
		time.Sleep(20 * time.Millisecond)
	}

	plain := startConsoleSwitch(t).browser()
	plain.signIn(opsToken)
	if _, page := plain.get("/console/live"); strings.Contains(page, "<h2>Replicas</h2>") {
		t.Errorf("an overview without replicas shows a replicas card:\n%s", page)
	}
}

// The audit page lists a settled day with its merchants and total, as settlement booked
// it.
func TestConsoleAuditListsSettlementRuns(t *testing.T) {
	s := startConsoleSwitch(t)
	b := s.browser()
	b.signIn(auditToken)
	if _, page := b.get("/console/audit"); !strings.Contains(page, "No day settled yet.") {
		t.Fatalf("audit page before any settlement:\n%s", page)
	}
	ctx := context.Background()
	payer := s.open(map[string]string{"type": "wallet", "msisdn": alice, "name": "Alice"})
	s.deposit(payer.ID, 100000, "CASH-1")
	for i, code := range []string{"55501", "55502"} {
		shop := s.open(map[string]string{"type": "merchant", "code": code, "name": "Shop " + code})
		if _, err := s.app.ledger.Transfer(ctx, ledger.TransferRequest{Key: "pay:" + code, Debit: payer.ID, Credit: shop.ID,
			Amount: int64(1000 * (i + 1)), Kind: settlement.KindMerchantPayment}); err != nil {
			t.Fatal(err)
		}
	}
	loc, err := time.LoadLocation(s.app.cfg.Timezone)
	if err != nil {
		t.Fatal(err)
	}
	today := time.Now().In(loc).Format("2006-01-02")
	day, err := settlement.ParseDay(today, loc)
	if err != nil {
		t.Fatal(err)
	}
	// The day's transfers were booked now; settling "after" the day ends is the same run
	// `payswitch settle` makes the next morning.
	if _, err := settlement.Settle(ctx, s.app.ledger, day, day.End); err != nil {
		t.Fatal(err)
	}
	_, page := b.get("/console/audit")
	if !regexp.MustCompile(`<td>` + today + `</td><td>KES</td><td class="num">2</td><td class="num">30\.00</td>`).MatchString(page) {
		t.Fatalf("the audit page does not list %s: 2 merchants, 30.00:\n%s", today, page)
	}
}
