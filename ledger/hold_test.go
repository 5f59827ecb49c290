package ledger_test

import (
	"errors"
	"testing"

	"github.com/payswitch/payswitch/internal/pgtest"

	"github.com/payswitch/payswitch/ledger"
)

func TestHoldLowersAvailableNotPosted(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		l := mustOpen(t)
		alice, shop := mustWallet(t, l, "KES"), mustWallet(t, l, "KES")
		mustDeposit(t, l, alice.ID, 1_000)
		entries := countRows(t, l, "entries")
		h, err := l.Hold(ctx, ledger.HoldRequest{Key: "P1:hold", Debit: alice.ID, Credit: shop.ID, Amount: 300,
			PaymentID: "P1", Kind: "merchant_payment"})
		if err != nil {
			t.Fatal(err)
		}
		if h.State != ledger.HoldPending || h.Currency != "KES" || h.TransferID != "" {
			t.Errorf("hold = %+v", h)
		}
		wantBalance(t, l, alice.ID, ledger.Balance{Posted: 1_000, Held: 300, Available: 700})
		wantBalance(t, l, shop.ID, posted(0))
		if n := countRows(t, l, "entries"); n != entries {
			t.Errorf("a hold wrote %d entries, want none", n-entries)
		}
		// The held money cannot be spent twice.
		_, err = l.Transfer(ctx, ledger.TransferRequest{Key: "k", Debit: alice.ID, Credit: shop.ID, Amount: 701, Kind: "transfer"})
		if !errors.Is(err, ledger.ErrInsufficientFunds) {
			t.Errorf("spending held money: err = %v, want ErrInsufficientFunds", err)
		}
		_, err = l.Hold(ctx, ledger.HoldRequest{Key: "P2:hold", Debit: alice.ID, Credit: shop.ID, Amount: 701, Kind: "transfer"})
		if !errors.Is(err, ledger.ErrInsufficientFunds) {
			t.Errorf("holding held money: err = %v, want ErrInsufficientFunds", err)
		}
		mustVerify(t, l)

		tr, err := l.Post(ctx, "P1:hold")
		if err != nil {
			t.Fatal(err)
		}
		if tr.Key != "P1:hold" || tr.Amount != 300 || tr.Debit != alice.ID || tr.Credit != shop.ID || tr.PaymentID != "P1" || tr.Kind != "merchant_payment" {
			t.Errorf("posted transfer = %+v", tr)
		}
		wantBalance(t, l, alice.ID, posted(700))
		wantBalance(t, l, shop.ID, posted(300))
		got, err := l.HoldByKey(ctx, "P1:hold")
		if err != nil {
			t.Fatal(err)
		}
		if got.State != ledger.HoldPosted || got.TransferID != tr.ID {
			t.Errorf("hold after post = %+v, want posted as %s", got, tr.ID)
		}
		mustVerify(t, l)
	})
}

func TestHoldLifecycle(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		const post, void = "post", "void"
		for _, c := range []struct {
			name  string
			steps []string
			last  error // what the last step returns
			state string
			payer ledger.Balance
		}{
			{"post", []string{post}, nil, ledger.HoldPosted, posted(600)},
			{"void", []string{void}, nil, ledger.HoldVoided, posted(1_000)},
			{"post twice", []string{post, post}, nil, ledger.HoldPosted, posted(600)},
			{"void twice", []string{void, void}, nil, ledger.HoldVoided, posted(1_000)},
			{"post after void", []string{void, post}, ledger.ErrHoldVoided, ledger.HoldVoided, posted(1_000)},
			{"void after post", []string{post, void}, ledger.ErrHoldPosted, ledger.HoldPosted, posted(600)},
		} {
			t.Run(c.name, func(t *testing.T) {
				l := mustOpen(t)
				payer, payee := mustWallet(t, l, "KES"), mustWallet(t, l, "KES")
				mustDeposit(t, l, payer.ID, 1_000)
				req := ledger.HoldRequest{Key: "h", Debit: payer.ID, Credit: payee.ID, Amount: 400, PaymentID: "P", Kind: "transfer"}
				if _, err := l.Hold(ctx, req); err != nil {
					t.Fatal(err)
				}
				var firstPost ledger.Transfer
				var err error
				for i, step := range c.steps {
					switch step {
					case post:
						var tr ledger.Transfer
						tr, err = l.Post(ctx, "h")
						if err == nil && firstPost.ID == "" {
							firstPost = tr
						} else if err == nil && tr != firstPost {
							t.Errorf("second post = %+v, want the first %+v", tr, firstPost)
						}
					case void:
						var h ledger.Hold
						h, err = l.Void(ctx, "h")
						if err == nil && h.State != ledger.HoldVoided {
							t.Errorf("void returned state %s", h.State)
						}
					}
					if i < len(c.steps)-1 && err != nil {
						t.Fatalf("step %d (%s): %v", i, step, err)
					}
				}
				if !errors.Is(err, c.last) {
					t.Errorf("last step: err = %v, want %v", err, c.last)
				}
				h, err := l.HoldByKey(ctx, "h")
				if err != nil {
					t.Fatal(err)
				}
				if h.State != c.state {
					t.Errorf("state = %s, want %s", h.State, c.state)
				}
				wantBalance(t, l, payer.ID, c.payer)
				// The same hold request again returns the hold as it is and reserves nothing.
				again, err := l.Hold(ctx, req)
				if err != nil || again.State != c.state {
					t.Errorf("hold again = %+v, %v; want state %s", again, err, c.state)
				}
				wantBalance(t, l, payer.ID, c.payer)
				if trs, _ := l.TransfersOfPayment(ctx, "P"); (c.state == ledger.HoldPosted) != (len(trs) == 1) {
					t.Errorf("payment has %d transfers in state %s", len(trs), c.state)
				}
				mustVerify(t, l)
			})
		}
	})
}

func TestHoldIdempotencyAndErrors(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		l := mustOpen(t)
		alice, bob := mustWallet(t, l, "KES"), mustWallet(t, l, "KES")
		mustDeposit(t, l, alice.ID, 1_000)
		req := ledger.HoldRequest{Key: "h", Debit: alice.ID, Credit: bob.ID, Amount: 100, Kind: "transfer"}
		first, err := l.Hold(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		again, err := l.Hold(ctx, req)
		if err != nil || again != first {
			t.Errorf("hold again = %+v, %v; want %+v", again, err, first)
		}
		wantBalance(t, l, alice.ID, ledger.Balance{Posted: 1_000, Held: 100, Available: 900})
		other := req
		other.Amount = 200
		if _, err := l.Hold(ctx, other); !errors.Is(err, ledger.ErrIdempotencyConflict) {
			t.Errorf("same key, other amount: err = %v, want ErrIdempotencyConflict", err)
		}
		if _, err := l.Transfer(ctx, ledger.TransferRequest{Key: "t", Debit: alice.ID, Credit: bob.ID, Amount: 1, Kind: "transfer"}); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Hold(ctx, ledger.HoldRequest{Key: "t", Debit: alice.ID, Credit: bob.ID, Amount: 1, Kind: "transfer"}); !errors.Is(err, ledger.ErrIdempotencyConflict) {
			t.Errorf("hold under a transfer's key: err = %v, want ErrIdempotencyConflict", err)
		}
		if _, err := l.Post(ctx, "nope"); !errors.Is(err, ledger.ErrNotFound) {
			t.Errorf("post unknown: err = %v, want ErrNotFound", err)
		}
		if _, err := l.Void(ctx, "nope"); !errors.Is(err, ledger.ErrNotFound) {
			t.Errorf("void unknown: err = %v, want ErrNotFound", err)
		}
	})
}

// TestPostStartsTheJournal posts a hold made before anything was booked: the journal is
// empty when the post reads its head, so its entries start the chain at the genesis hash.
func TestPostStartsTheJournal(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		l := mustOpen(t)
		cash, alice := mustCash(t, l, "KES"), mustWallet(t, l, "KES")
		if _, err := l.Hold(ctx, ledger.HoldRequest{Key: "seed:hold", Debit: cash.ID, Credit: alice.ID, Amount: 500, Kind: "deposit"}); err != nil {
			t.Fatal(err)
		}
		tr, err := l.Post(ctx, "seed:hold")
		if err != nil {
			t.Fatal(err)
		}
		if tr.DebitBalanceAfter != -500 || tr.CreditBalanceAfter != 500 || !tr.BalancesAfterKnown {
			t.Errorf("posted transfer = %+v", tr)
		}
		var got []ledger.Entry
		if err := l.Journal(ctx, 0, func(e ledger.Entry) error { got = append(got, e); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].Seq != 1 || got[0].PrevHash != ledger.GenesisHash || got[1].PrevHash != got[0].Hash {
			t.Errorf("journal = %+v, want two entries from the genesis hash", got)
		}
		wantBalance(t, l, alice.ID, posted(500))
		mustVerify(t, l)
	})
}
