package main

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/otp"
	"github.com/payswitch/payswitch/outbox"
	"github.com/payswitch/payswitch/store"
	payswitch "github.com/payswitch/payswitch/switch"
)

// manyPayments gives msisdn n payments (two thirds made, one third received), two by
// two at the same microsecond so that the page cursor must break ties by rowid.
func manyPayments(t testing.TB, db *store.DB, msisdn string, n int) {
	t.Helper()
	base := time.Now().Add(-24 * time.Hour).UnixMicro()
	err := db.Write(context.Background(), func(tx store.Tx) error {
		_, err := tx.ExecContext(context.Background(), `INSERT INTO payments (id, type, channel, state, payer_msisdn,
			payer_account, payee_account, payee_msisdn, amount, currency, created_at, updated_at)
			WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?3)
			SELECT printf('T%09d', i), 'transfer', 'sms', 'completed',
				CASE WHEN i % 3 = 0 THEN '254700000777' ELSE ?1 END, 'ACPAYER', 'ACPAYEE',
				CASE WHEN i % 3 = 0 THEN ?1 ELSE '254700000777' END, 100 + i, 'KES', ?2 + (i / 2) * 1000, ?2 + (i / 2) * 1000
			FROM n`, msisdn, base, n)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A number with 100,000 payments: every page of its account's payments is read along
// the indexes (keyset pagination, never OFFSET), and walking the pages gives each
// payment once, newest first.
func TestConsolePaymentPagesUseIndexes(t *testing.T) {
	s := startConsoleSwitch(t)
	acc := s.open(map[string]string{"type": "wallet", "msisdn": alice, "name": "Busy Alice"})
	manyPayments(t, s.app.db, alice, 100000)
	db := s.app.db.Reader()

	rows, err := db.Query(`EXPLAIN QUERY PLAN `+numberPaymentsQuery, alice, 1<<62, 1<<62, 26)
	if err != nil {
		t.Fatal(err)
	}
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	rows.Close()
	joined := strings.Join(plan, "\n")
	for _, want := range []string{"USING INDEX payments_by_payer (payer_msisdn=? AND", "USING INDEX payments_by_payee (payee_msisdn=? AND"} {
		if !strings.Contains(joined, want) {
			t.Errorf("plan lacks %q:\n%s", want, joined)
		}
	}
	for _, p := range plan {
		if strings.HasPrefix(p, "SCAN payments") {
			t.Errorf("plan reads the whole table (%q):\n%s", p, joined)
		}
	}

	// Walk the first pages, then jump deep: each page continues the last.
	ctx := context.Background()
	seen := map[string]bool{}
	var last time.Time
	cursor := ""
	for page := range 40 {
		ps, next, err := numberPayments(ctx, db, alice, cursor, 25)
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) != 25 || next == "" {
			t.Fatalf("page %d: %d payments, next %q", page, len(ps), next)
		}
		for _, p := range ps {
			if seen[p.ID] {
				t.Fatalf("page %d repeats %s", page, p.ID)
			}
			if !last.IsZero() && p.CreatedAt.After(last) {
				t.Fatalf("page %d: %s is newer than the one before", page, p.ID)
			}
			seen[p.ID], last = true, p.CreatedAt
		}
		cursor = next
	}
	if ps, _, _ := numberPayments(ctx, db, alice, cursor, 25); ps[0].ID != "T000099000" {
		t.Fatalf("page 41 starts with %s, want T000099000", ps[0].ID)
	}
	b := s.browser()
	b.signIn(opsToken)
	if resp, body := b.get("/console/accounts/" + acc.ID + "?before=" + cursor); resp.StatusCode != http.StatusOK ||
		!strings.Contains(body, "T000099000") || !strings.Contains(body, "Older payments") {
		t.Fatalf("account page 41: %d", resp.StatusCode)
	}
	if resp, _ := b.get("/console/accounts/" + acc.ID + "?before=junk"); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("a bad cursor: %d, want 422", resp.StatusCode)
	}
	// The overview's chart counts an hour, whatever lies before it.
	if resp, _ := b.get("/console/live"); resp.StatusCode != http.StatusOK {
		t.Fatalf("overview: %d", resp.StatusCode)
	}
}

// BenchmarkConsoleAccountPage reads a page of payments deep in the history of a number
// with 100,000 of them: it should cost what the first page costs.
func BenchmarkConsoleAccountPage(b *testing.B) {
	db, err := store.Open(filepath.Join(b.TempDir(), "payswitch.db"), store.Options{},
		ledger.Schema, otp.Schema, outbox.Schema, payswitch.Schema)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	manyPayments(b, db, alice, 100000)
	ctx := context.Background()
	var created, rid int64
	// About 90,000 payments back.
	if err := db.Reader().QueryRow(`SELECT created_at, rowid FROM payments WHERE id = 'T000010000'`).Scan(&created, &rid); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct{ name, cursor string }{{"first", ""}, {"deep", fmt.Sprintf("%d.%d", created, rid)}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, _, err := numberPayments(ctx, db.Reader(), alice, c.cursor, 25); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
