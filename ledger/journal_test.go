package ledger_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/payswitch/payswitch/internal/pgtest"

	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/store"
)

func TestEntryHashRule(t *testing.T) {
	// Expected values computed outside Go:
	//   printf '%s' '<fields joined by ,>' | sha256sum
	for _, c := range []struct {
		name string
		e    ledger.Entry
		want string
	}{
		{"first entry, debit of a system account", ledger.Entry{PrevHash: ledger.GenesisHash, Seq: 1,
			TimeText: "2026-01-02T03:04:05.123456Z", TransferID: "TRABCDEFGHIJKL", PaymentID: "PAY1234567",
			AccountID: "cash:KES", Direction: "D", Amount: 150000, Currency: "KES", BalanceAfter: -150000},
			"4ad183d9130dfb1c1066ed9749308862c3fdabd7aa7b388dc87934a588531a0d"},
		{"empty payment id, time from Time", ledger.Entry{PrevHash: ledger.GenesisHash, Seq: 2,
			Time:       time.Date(2026, 1, 2, 6, 4, 5, 123456999, time.FixedZone("EAT", 3*3600)),
			TransferID: "TRABCDEFGHIJKL", AccountID: "AC0123456789", Direction: "C", Amount: 5, Currency: "KES", BalanceAfter: 5},
			"e896d0736f8f90a9fa2bed26cd0eef126e541d79378758220c1ab3c2272499c3"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := ledger.EntryHash(c.e); got != c.want {
				t.Errorf("EntryHash = %s, want %s", got, c.want)
			}
		})
	}
	if len(ledger.GenesisHash) != 64 || strings.Trim(ledger.GenesisHash, "0") != "" {
		t.Errorf("GenesisHash = %q, want 64 zeros", ledger.GenesisHash)
	}
}

func TestJournalChainsEveryEntry(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		l := mustOpen(t)
		alice, bob := mustWallet(t, l, "KES"), mustWallet(t, l, "KES")
		mustDeposit(t, l, alice.ID, 500)
		if _, err := l.Transfer(ctx, ledger.TransferRequest{Key: "t", Debit: alice.ID, Credit: bob.ID, Amount: 200, PaymentID: "P", Kind: "transfer"}); err != nil {
			t.Fatal(err)
		}
		prev := ledger.GenesisHash
		var seq int64
		err := l.Journal(ctx, 0, func(e ledger.Entry) error {
			seq++
			if e.Seq != seq || e.PrevHash != prev || e.Hash != ledger.EntryHash(e) {
				return fmt.Errorf("entry %+v breaks the chain (want seq %d, prev %s)", e, seq, prev)
			}
			if ledger.FormatTime(e.Time) != e.TimeText {
				return fmt.Errorf("entry %d: time %v stored as %q", e.Seq, e.Time, e.TimeText)
			}
			prev = e.Hash
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if seq != 4 {
			t.Errorf("journal has %d entries, want 4", seq)
		}
		r := mustVerify(t, l)
		if r.LastSeq != 4 || r.LastHash != prev {
			t.Errorf("report last = %d %s, want 4 %s", r.LastSeq, r.LastHash, prev)
		}
	})
}

func TestEntriesAreAppendOnly(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		l := mustOpen(t)
		alice := mustWallet(t, l, "KES")
		mustDeposit(t, l, alice.ID, 500)
		for _, q := range []string{
			"UPDATE entries SET amount = 1 WHERE seq = 1",
			"DELETE FROM entries WHERE seq = 2",
			"UPDATE transfers SET amount = 1",
			"DELETE FROM transfers",
		} {
			err := l.DB().Write(ctx, func(tx store.Tx) error { _, err := tx.ExecContext(context.Background(), q); return err })
			if err == nil || !strings.Contains(err.Error(), "append-only") {
				t.Errorf("%s: err = %v, want the append-only trigger", q, err)
			}
		}
		mustVerify(t, l)
	})
}

// refuseBoomEntries adds a trigger that refuses every journal entry of payment BOOM, so
// that a booking fails after it has written its transfer and balances.
func refuseBoomEntries(t *testing.T, l *ledger.Ledger) {
	t.Helper()
	if l.DB().Dialect() == store.Postgres {
		tamper(t, l, `CREATE FUNCTION test_refuse_entry() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN
				IF NEW.payment_id = 'BOOM' THEN RAISE EXCEPTION 'test: entry refused'; END IF;
				RETURN NEW;
			END $$`,
			`CREATE TRIGGER test_refuse_entry BEFORE INSERT ON entries FOR EACH ROW EXECUTE FUNCTION test_refuse_entry()`)
		return
	}
	tamper(t, l, `CREATE TRIGGER test_refuse_entry BEFORE INSERT ON entries WHEN NEW.payment_id = 'BOOM'
		BEGIN SELECT RAISE(ABORT, 'test: entry refused'); END`)
}

// dropTrigger is the statement that drops the ledger's trigger name (PostgreSQL names
// its table too: the name's first word).
func dropTrigger(l *ledger.Ledger, name string) string {
	if l.DB().Dialect() == store.Postgres {
		table, _, _ := strings.Cut(name, "_")
		return "DROP TRIGGER " + name + " ON " + table
	}
	return "DROP TRIGGER " + name
}

// tamper runs SQL that the triggers would refuse, as someone with the file could.
func tamper(t *testing.T, l *ledger.Ledger, stmts ...string) {
	t.Helper()
	err := l.DB().Write(ctx, func(tx store.Tx) error {
		for _, s := range stmts {
			if _, err := tx.ExecContext(context.Background(), s); err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestVerifyFindsTamperedEntry(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		setup := func(t *testing.T) (*ledger.Ledger, ledger.Account) {
			l := mustOpen(t)
			alice, bob := mustWallet(t, l, "KES"), mustWallet(t, l, "KES")
			mustDeposit(t, l, alice.ID, 1_000)
			for i := range 3 {
				if _, err := l.Transfer(ctx, ledger.TransferRequest{Key: fmt.Sprint(i), Debit: alice.ID, Credit: bob.ID, Amount: 100, Kind: "transfer"}); err != nil {
					t.Fatal(err)
				}
			}
			mustVerify(t, l)
			return l, alice
		}
		for _, c := range []struct {
			name   string
			tamper func(t *testing.T, l *ledger.Ledger)
			want   string // in the first problem
		}{
			{"amount changed", func(t *testing.T, l *ledger.Ledger) {
				tamper(t, l, dropTrigger(l, "entries_no_update"), "UPDATE entries SET amount = 1000 WHERE seq = 3")
			}, "entry seq 3:"},
			{"payee changed", func(t *testing.T, l *ledger.Ledger) {
				tamper(t, l, dropTrigger(l, "entries_no_update"), "UPDATE entries SET account_id = (SELECT account_id FROM entries WHERE seq = 3) WHERE seq = 6")
			}, "entry seq 6:"},
			{"entry deleted", func(t *testing.T, l *ledger.Ledger) {
				tamper(t, l, dropTrigger(l, "entries_no_delete"), "DELETE FROM entries WHERE seq = 5")
			}, "entry seq 6: expected seq 5"},
			{"hash rewritten to match", func(t *testing.T, l *ledger.Ledger) {
				var e ledger.Entry
				err := l.Journal(ctx, 2, func(x ledger.Entry) error {
					if x.Seq == 3 {
						e = x
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				e.Amount, e.BalanceAfter = 1, e.BalanceAfter+99
				tamper(t, l, dropTrigger(l, "entries_no_update"),
					fmt.Sprintf("UPDATE entries SET amount = 1, balance_after = %d, hash = '%s' WHERE seq = 3", e.BalanceAfter, ledger.EntryHash(e)))
			}, "entry seq 3:"},
		} {
			t.Run(c.name, func(t *testing.T) {
				l, _ := setup(t)
				c.tamper(t, l)
				r, err := l.Verify(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if r.OK || len(r.Problems) == 0 {
					t.Fatalf("Verify passed a tampered journal: %+v", r)
				}
				if !strings.Contains(r.Problems[0], c.want) {
					t.Errorf("first problem %q, want it to name %q (all: %q)", r.Problems[0], c.want, r.Problems)
				}
			})
		}
	})
}

func TestVerifyFindsCorruptedBalance(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		for _, c := range []struct {
			name string
			sql  string
			want string
		}{
			{"posted credits", "UPDATE accounts SET credits_posted = credits_posted + 5 WHERE id = '%s'", "account %s: stored"},
			{"pending debits", "UPDATE accounts SET debits_pending = debits_pending + 5 WHERE id = '%s'", "account %s: stored"},
		} {
			t.Run(c.name, func(t *testing.T) {
				l := mustOpen(t)
				alice := mustWallet(t, l, "KES")
				mustDeposit(t, l, alice.ID, 1_000)
				tamper(t, l, fmt.Sprintf(c.sql, alice.ID))
				r, err := l.Verify(ctx)
				if err != nil {
					t.Fatal(err)
				}
				want := fmt.Sprintf(c.want, alice.ID)
				if r.OK || len(r.Problems) == 0 || !strings.Contains(r.Problems[0], want) {
					t.Errorf("problems %q, want the first to name %q", r.Problems, want)
				}
			})
		}
	})
}

func TestEntriesPaging(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		l := mustOpen(t)
		alice, other := mustWallet(t, l, "KES"), mustWallet(t, l, "KES")
		for range 7 {
			mustDeposit(t, l, alice.ID, 10)
			mustDeposit(t, l, other.ID, 10) // interleaved entries of another account
		}
		var pages [][]ledger.Entry
		var before int64
		for {
			page, err := l.Entries(ctx, alice.ID, before, 3)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			pages = append(pages, page)
			before = page[len(page)-1].Seq
		}
		if len(pages) != 3 || len(pages[0]) != 3 || len(pages[1]) != 3 || len(pages[2]) != 1 {
			t.Fatalf("pages of sizes %v, want 3, 3, 1", sizes(pages))
		}
		last := int64(1 << 62)
		balance := int64(70)
		for _, p := range pages {
			for _, e := range p {
				if e.AccountID != alice.ID || e.Seq >= last || e.BalanceAfter != balance {
					t.Errorf("entry %+v out of order (after seq %d, want balance %d)", e, last, balance)
				}
				last, balance = e.Seq, balance-10
			}
		}
		all, err := l.Entries(ctx, alice.ID, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 7 {
			t.Errorf("default page has %d entries, want all 7", len(all))
		}
	})
}

func sizes(pages [][]ledger.Entry) []int {
	var s []int
	for _, p := range pages {
		s = append(s, len(p))
	}
	return s
}

func TestTrialBalance(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		l := mustOpen(t)
		kes1, kes2, ugx := mustWallet(t, l, "KES"), mustWallet(t, l, "KES"), mustWallet(t, l, "UGX")
		mustDeposit(t, l, kes1.ID, 1_000)
		mustDeposit(t, l, ugx.ID, 50_000)
		pay, err := l.Transfer(ctx, ledger.TransferRequest{Key: "p", Debit: kes1.ID, Credit: kes2.ID, Amount: 300, Kind: "transfer"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Reverse(ctx, pay.ID, "r"); err != nil {
			t.Fatal(err)
		}
		// A pending hold is not posted money.
		if _, err := l.Hold(ctx, ledger.HoldRequest{Key: "h", Debit: kes1.ID, Credit: kes2.ID, Amount: 100, Kind: "transfer"}); err != nil {
			t.Fatal(err)
		}
		tb, err := l.TrialBalance(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]ledger.Totals{"KES": {Debits: 1_600, Credits: 1_600}, "UGX": {Debits: 50_000, Credits: 50_000}}
		if len(tb) != len(want) || tb["KES"] != want["KES"] || tb["UGX"] != want["UGX"] {
			t.Errorf("trial balance = %+v, want %+v", tb, want)
		}
		r := mustVerify(t, l)
		if r.Totals["KES"] != want["KES"] || r.Totals["UGX"] != want["UGX"] {
			t.Errorf("journal totals = %+v, want %+v", r.Totals, want)
		}
	})
}

// TestVerifyFindsAStrayHeadOnPostgres moves PostgreSQL's journal head (the row the next
// entry chains to) off the last entry: Verify says so.
func TestVerifyFindsAStrayHeadOnPostgres(t *testing.T) {
	t.Run("postgres", func(t *testing.T) {
		l := mustOpen(t)
		alice := mustWallet(t, l, "KES")
		mustDeposit(t, l, alice.ID, 1_000)
		tamper(t, l, "UPDATE ledger_head SET seq = seq - 1")
		r, err := l.Verify(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if r.OK || len(r.Problems) != 1 || !strings.Contains(r.Problems[0], "journal head: seq 1") {
			t.Fatalf("problems %q, want one naming the journal head", r.Problems)
		}
	})
}
