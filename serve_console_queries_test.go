package main

// The console's own reads of the payment tables (serve_console_queries.go) on both
// drivers. On PostgreSQL the payments table has a rowid column (an identity, increasing
// with creation) standing for SQLite's implicit rowid.

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/payswitch/payswitch/console"
	"github.com/payswitch/payswitch/internal/dbtest"
	"github.com/payswitch/payswitch/internal/pgtest"
	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/otp"
	"github.com/payswitch/payswitch/outbox"
	"github.com/payswitch/payswitch/store"
	payswitch "github.com/payswitch/payswitch/switch"
)

// consoleTables opens a database with the payment tables on t's driver.
func consoleTables(t *testing.T) *store.DB {
	t.Helper()
	return dbtest.Open(t, store.Options{}, ledger.Schema, otp.Schema, outbox.Schema, payswitch.Schema)
}

// consolePaymentRow is a payment as the tests write it.
type consolePaymentRow struct {
	id, state, channel, payer, payee string
	created                          time.Time
	escrow                           int
}

func putConsolePayments(t *testing.T, db *store.DB, ps ...consolePaymentRow) {
	t.Helper()
	ctx := context.Background()
	err := db.Write(ctx, func(tx store.Tx) error {
		for _, p := range ps {
			if _, err := tx.ExecContext(ctx, `INSERT INTO payments (id, type, channel, state, payer_msisdn, payer_account,
				payee_account, payee_msisdn, amount, currency, created_at, updated_at, escrow)
				VALUES (?, 'transfer', ?, ?, ?, 'ACPAYER', 'ACPAYEE', ?, 100, 'KES', ?, ?, ?)`,
				p.id, p.channel, p.state, p.payer, p.payee, p.created.UnixMicro(), p.created.UnixMicro(), p.escrow); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A number's payments, made and received, page by page: newest first, ties at one
// microsecond broken by rowid, each once (a payment to oneself too); one payment by id,
// with its timeline; the overview's counts per minute.
func TestConsoleQueriesOnBothDrivers(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		db := consoleTables(t)
		ctx := context.Background()
		base := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
		var ps []consolePaymentRow
		for i := range 40 {
			p := consolePaymentRow{id: fmt.Sprintf("P%03d", i), state: "completed", channel: "sms",
				payer: alice, payee: "254700000777", created: base.Add(time.Duration(i/2) * 20 * time.Second)}
			switch {
			case i%5 == 0:
				p.payer, p.payee = "254700000777", alice
			case i == 13:
				p.payee = alice // to oneself
			}
			if i%4 == 0 {
				p.state, p.channel = "failed", "ussd"
			}
			ps = append(ps, p)
		}
		ps = append(ps, consolePaymentRow{id: "POTHER", state: "completed", channel: "sms", payer: "254700000888",
			payee: "254700000777", created: base.Add(time.Minute), escrow: 1})
		putConsolePayments(t, db, ps...)

		var got []string
		cursor := ""
		for page := 0; ; page++ {
			items, next, err := numberPayments(ctx, db.Reader(), alice, cursor, 7)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range items {
				got = append(got, p.ID)
			}
			if next == "" {
				break
			}
			if page > 10 {
				t.Fatal("pages never end")
			}
			cursor = next
		}
		if len(got) != 40 {
			t.Fatalf("%d payments over the pages, want 40: %v", len(got), got)
		}
		for i, id := range got {
			if want := fmt.Sprintf("P%03d", 39-i); id != want {
				t.Fatalf("payment %d of the pages is %s, want %s (newest first, ties by rowid)", i, id, want)
			}
		}
		if _, _, err := numberPayments(ctx, db.Reader(), alice, "junk", 7); !errors.Is(err, console.ErrRefused) {
			t.Errorf("a bad cursor: %v", err)
		}

		p, err := consolePayment(ctx, db.Reader(), "POTHER")
		if err != nil || p.PayerMSISDN != "254700000888" || !p.Escrow || !p.CreatedAt.Equal(base.Add(time.Minute)) {
			t.Fatalf("payment: %+v %v", p, err)
		}
		if _, err := consolePayment(ctx, db.Reader(), "NOSUCH"); !errors.Is(err, console.ErrNotFound) {
			t.Errorf("an unknown payment: %v", err)
		}
		if err := db.Write(ctx, func(tx store.Tx) error {
			for i, ev := range []string{"created", "confirmed"} {
				if _, err := tx.ExecContext(ctx, `INSERT INTO payment_events (payment_id, time, event, from_state, to_state)
					VALUES ('POTHER', ?, ?, '', ?)`, base.Add(time.Duration(i)*time.Second).UnixMicro(), ev, ev); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		tl, err := paymentTimeline(ctx, db.Reader(), "POTHER")
		if err != nil || len(tl) != 2 || tl[0].Event != "created" || tl[1].Event != "confirmed" || !tl[1].Time.Equal(base.Add(time.Second)) {
			t.Fatalf("timeline: %+v %v", tl, err)
		}

		// Since 10:05: P030..P039 (10:05:00 to 10:06:20) and nothing of the 10:01 one.
		rows, err := paymentActivity(ctx, db.Reader(), base.Add(5*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		counts := map[string]int{}
		for _, r := range rows {
			counts[fmt.Sprintf("%s %s %s", r.Minute.Format("15:04"), r.State, r.Channel)] += r.Count
		}
		want := map[string]int{"10:05 completed sms": 5, "10:05 failed ussd": 1, "10:06 completed sms": 3, "10:06 failed ussd": 1}
		if fmt.Sprint(counts) != fmt.Sprint(want) {
			t.Errorf("activity %v, want %v", counts, want)
		}
		if rows, err := paymentActivity(ctx, db.Reader(), base.Add(time.Hour)); err != nil || len(rows) != 0 {
			t.Errorf("activity after the last payment: %v %v", rows, err)
		}
	})
}
