package ledger

import (
	"context"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/payswitch/payswitch/store"
)

var transferIDForm = regexp.MustCompile(`^TR[A-Z0-9]{12}$`)

func TestTransferIDsSortByTimeAndNeverRepeat(t *testing.T) {
	at := time.Date(2026, 7, 1, 10, 0, 0, 0, time.UTC)
	var g transferIDs
	seen := map[string]bool{}
	prev := ""
	for _, step := range []struct {
		name  string
		clock time.Duration // added to the clock before the ids
		n     int
	}{
		{"first tick", 0, 3},
		{"same tick", 50 * time.Millisecond, 3},
		{"next ticks", time.Second, 3},
		{"clock set back", -time.Hour, 3},
		{"clock forward again", 2 * time.Hour, 3},
	} {
		at = at.Add(step.clock)
		for range step.n {
			id := g.next(at)
			if !transferIDForm.MatchString(id) {
				t.Fatalf("%s: id %q, want TR and 12 letters or digits", step.name, id)
			}
			if seen[id] || id <= prev {
				t.Errorf("%s: id %q after %q: want each id new and after the one before", step.name, id, prev)
			}
			seen[id], prev = true, id
		}
	}
	// A full tick borrows the next one.
	g.seq = idSeqs - 1
	tick := g.tick
	if id := g.next(at); id <= prev || g.tick != tick+1 {
		t.Errorf("after a full tick: id %q (tick %d, was %d) after %q", id, g.tick, tick, prev)
	}
	// Before the epoch every id is in tick 0, still new.
	var early transferIDs
	a, b := early.next(idEpoch.Add(-time.Hour)), early.next(idEpoch.Add(-time.Hour))
	if a[:2+idTickSymbols] != "TR0000000" || a == b {
		t.Errorf("ids before the epoch: %q, %q", a, b)
	}
}

// TestTransferIDTakenIsDrawnAgain has two ledgers write one file at once with the same
// sequence, as two processes might: the second's id is taken, and it books with another.
func TestTransferIDTakenIsDrawnAgain(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(filepath.Join(t.TempDir(), "l.db"), store.Options{}, Schema)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Date(2026, 7, 1, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	first, second := New(db, clock), New(db, clock)
	cash, err := first.SystemAccount(ctx, Cash, "KES", "KES")
	if err != nil {
		t.Fatal(err)
	}
	alice, err := first.CreateAccount(ctx, NewAccount{Type: Wallet, Currency: "KES"})
	if err != nil {
		t.Fatal(err)
	}
	same := func() transferIDs {
		return transferIDs{started: true, tick: int64(now.Sub(idEpoch) / idTick), seq: 1000}
	}
	for _, c := range []struct {
		name string
		book func(l *Ledger, key string) (Transfer, error)
	}{
		{"Transfer", func(l *Ledger, key string) (Transfer, error) {
			return l.Transfer(ctx, TransferRequest{Key: key, Debit: cash.ID, Credit: alice.ID, Amount: 1, Kind: "deposit"})
		}},
		{"TransferBatch", func(l *Ledger, key string) (Transfer, error) {
			trs, errs := l.TransferBatch(ctx, []TransferRequest{{Key: key, Debit: cash.ID, Credit: alice.ID, Amount: 1, Kind: "deposit"}})
			return trs[0], errs[0]
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			first.ids, second.ids = same(), same()
			a, err := c.book(first, c.name+":first")
			if err != nil {
				t.Fatal(err)
			}
			b, err := c.book(second, c.name+":second")
			if err != nil {
				t.Fatalf("the second ledger, whose id was taken: %v", err)
			}
			if a.ID == b.ID || !transferIDForm.MatchString(b.ID) {
				t.Errorf("ids %q and %q", a.ID, b.ID)
			}
			if second.ids.seq < idSeqs/2 {
				t.Errorf("the second ledger booked %s without drawing again: its first id was not taken", b.ID)
			}
		})
	}
	r, err := first.Verify(ctx)
	if err != nil || !r.OK || r.Transfers != 4 {
		t.Fatalf("Verify: %+v, %v", r, err)
	}
}
