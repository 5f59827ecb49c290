package ledger

import (
	"context"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/payswitch/payswitch/internal/pgtest"
	"github.com/payswitch/payswitch/store"
)

var transferIDForm = regexp.MustCompile(`^TR[A-Z0-9]{12}$`)

func TestTransferIDForm(t *testing.T) {
	l := New(nil, nil)
	a, b := l.NewTransferID(), l.NewTransferID()
	if !transferIDForm.MatchString(a) || !(a < b) {
		t.Fatalf("transfer ids %q, %q: want TR and 12 letters or digits, in order", a, b)
	}
}

// TestTransferIDTakenIsDrawnAgain has two ledgers write one database at once with the
// same sequence, as two processes might: the second's id is taken, and it books with
// another.
func TestTransferIDTakenIsDrawnAgain(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		db, err := store.Open(filepath.Join(t.TempDir(), "l.db"), store.Options{}, Schema)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		transferIDTakenIsDrawnAgain(t, db)
	})
	t.Run("postgres", func(t *testing.T) {
		db, err := store.OpenPostgres(context.Background(), pgtest.URL(t), store.Options{}, Schema)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		transferIDTakenIsDrawnAgain(t, db)
	})
}

func transferIDTakenIsDrawnAgain(t *testing.T, db *store.DB) {
	ctx := context.Background()
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
	tick := int64(now.Sub(transferIDLayout.Epoch) / transferIDLayout.Tick)
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
			first.ids.SetState(true, tick, 1000)
			second.ids.SetState(true, tick, 1000)
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
			if _, _, seq := second.ids.State(); seq < second.ids.SeqsPerTick()/2 {
				t.Errorf("the second ledger booked %s without drawing again: its first id was not taken", b.ID)
			}
		})
	}
	r, err := first.Verify(ctx)
	if err != nil || !r.OK || r.Transfers != 4 {
		t.Fatalf("Verify: %+v, %v", r, err)
	}
}
