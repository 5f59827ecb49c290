package otp

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/payswitch/payswitch/internal/pgtest"
	"github.com/payswitch/payswitch/store"
)

// racers runs fn(n, db) on n goroutines at once, spread over dbs (the nodes), started
// together, and waits for them all.
func racers(n int, dbs []*store.DB, fn func(n int, db *store.DB)) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	for g := range n {
		db := dbs[g%len(dbs)]
		wg.Go(func() {
			<-start
			fn(g, db)
		})
	}
	close(start)
	wg.Wait()
}

// Several nodes checking the right code of one payment at once: exactly one uses it,
// every other is told it was used, and none fails.
func TestNodesRaceToUseOneCode(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		dbs, i := openNodes(t, 2), mustIssuer(t, Config{})
		for round := range 20 {
			b := binding(fmt.Sprintf("PAYUSE%04d", round))
			code := issue(t, dbs[0], i, b, t0)
			results := make([]Result, 8)
			racers(len(results), dbs, func(n int, db *store.DB) {
				results[n] = check(t, db, i, b, code, t0.Add(time.Second))
			})
			ok, used := 0, 0
			for _, r := range results {
				switch r {
				case Result{OK: true, AttemptsLeft: 3}:
					ok++
				case Result{Used: true}:
					used++
				default:
					t.Fatalf("round %d: a racer got %+v", round, r)
				}
			}
			if ok != 1 || used != len(results)-1 {
				t.Fatalf("round %d: %d used the code and %d were told it was used, want 1 and %d", round, ok, used, len(results)-1)
			}
		}
	})
}

// Several nodes giving wrong codes for one payment at once: the attempts are counted one
// by one, each racer is told its own count, and the count stops at the limit.
func TestNodesRaceWrongCodes(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		dbs, i := openNodes(t, 2), mustIssuer(t, Config{MaxAttempts: 3})
		for round := range 20 {
			b := binding(fmt.Sprintf("PAYWRONG%02d", round))
			code := issue(t, dbs[0], i, b, t0)
			results := make([]Result, 8)
			racers(len(results), dbs, func(n int, db *store.DB) {
				results[n] = check(t, db, i, b, wrongCode(code), t0.Add(time.Second))
			})
			var left []int
			exhausted := 0
			for _, r := range results {
				switch {
				case r.Exhausted && r == (Result{Exhausted: true}):
					exhausted++
				case r == (Result{AttemptsLeft: r.AttemptsLeft}) && r.AttemptsLeft > 0:
					left = append(left, r.AttemptsLeft)
				default:
					t.Fatalf("round %d: a racer got %+v", round, r)
				}
			}
			slices.Sort(left)
			if !slices.Equal(left, []int{1, 2}) || exhausted != len(results)-2 {
				t.Fatalf("round %d: attempts left %v and %d exhausted, want [1 2] and %d", round, left, exhausted, len(results)-2)
			}
			var attempts int
			var state, reason string
			if err := dbs[1].Reader().QueryRow(`SELECT attempts, state, dead_reason FROM otp_codes WHERE payment_id = ?`,
				b.PaymentID).Scan(&attempts, &state, &reason); err != nil {
				t.Fatal(err)
			}
			if attempts != 3 || state != "dead" || reason != "exhausted" {
				t.Fatalf("round %d: stored %d attempts, %s (%s), want 3, dead (exhausted)", round, attempts, state, reason)
			}
			if res := check(t, dbs[1], i, b, code, t0.Add(2*time.Second)); res != (Result{Exhausted: true}) {
				t.Fatalf("round %d: the right code after: %+v, want Exhausted", round, res)
			}
		}
	})
}

// Several nodes resending one payment's code at once: the interval lets one through at a
// time, the limit holds however many reissue at once, and only the last code works.
func TestNodesRaceToResend(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		dbs, i := openNodes(t, 2), mustIssuer(t, Config{MaxResends: 3, ResendInterval: time.Minute})
		for round := range 10 {
			b := binding(fmt.Sprintf("PAYRESEND%01d", round))
			issue(t, dbs[0], i, b, t0)
			codes := make([]string, 8)
			errs := make([]error, len(codes))
			at := t0.Add(time.Minute)
			racers(len(codes), dbs, func(n int, db *store.DB) {
				codes[n], errs[n] = resend(db, i, b, at)
			})
			sent := 0
			for _, err := range errs {
				switch {
				case err == nil:
					sent++
				case !errors.Is(err, ErrResendTooSoon):
					t.Fatalf("round %d: resend: %v", round, err)
				}
			}
			if sent != 1 {
				t.Fatalf("round %d: %d resends at one moment, want 1", round, sent)
			}
			// Reissues ignore the interval, so all race for the two resends left.
			racers(len(codes), dbs, func(n int, db *store.DB) {
				errs[n] = db.Write(ctx, func(tx store.Tx) (err error) {
					codes[n], _, err = i.Reissue(ctx, tx, b, at.Add(time.Second))
					return err
				})
			})
			sent = 0
			var reissued []string
			for n, err := range errs {
				switch {
				case err == nil:
					sent++
					reissued = append(reissued, codes[n])
				case !errors.Is(err, ErrResendLimit):
					t.Fatalf("round %d: reissue: %v", round, err)
				}
			}
			var resends int
			if err := dbs[1].Reader().QueryRow(`SELECT resends FROM otp_codes WHERE payment_id = ?`, b.PaymentID).Scan(&resends); err != nil {
				t.Fatal(err)
			}
			if sent != 2 || resends != 3 {
				t.Fatalf("round %d: %d reissues went through and %d resends are stored, want 2 and 3", round, sent, resends)
			}
			// The code in force is one of the two reissued (the one committed last).
			var stored *Stored
			write(t, dbs[0], func(tx store.Tx) (err error) { stored, err = readStored(tx, b.PaymentID); return err })
			if !slices.ContainsFunc(reissued, func(c string) bool { return stored.Matches(i.Attempt(b, c)) }) {
				t.Fatalf("round %d: the code stored is none of those reissued", round)
			}
		}
	})
}

// EventsBetweenOn finds the events by time on either driver, and none in a database
// without otp's tables.
func TestEventsBetweenOn(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		db := mustOpen(t)
		write(t, db, func(tx store.Tx) error {
			for n := range 3 {
				e := Event{Time: t0.Add(time.Duration(n) * time.Minute), PaymentID: fmt.Sprintf("PAYEVENT%02d", n),
					MSISDN: "254700000001", Channel: "sms", Event: EventIssued}
				if err := RecordEvent(ctx, tx, e); err != nil {
					return err
				}
			}
			return nil
		})
		tx, err := db.ReadSnapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		var got []string
		for e, err := range EventsBetweenOn(ctx, tx, db.Dialect(), t0.Add(time.Minute).Format(timeLayout), "") {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, e.PaymentID+" "+e.Time+" "+e.MSISDNMasked)
		}
		want := []string{"PAYEVENT01 2026-03-01T10:01:00.000000Z 2547****001", "PAYEVENT02 2026-03-01T10:02:00.000000Z 2547****001"}
		if !slices.Equal(got, want) {
			t.Fatalf("events %q, want %q", got, want)
		}
		var empty *store.DB
		if driverOf(t) == store.Postgres {
			empty, err = store.OpenPostgres(ctx, pgtest.URL(t), store.Options{})
		} else {
			empty, err = store.Open(t.TempDir()+"/empty.db", store.Options{})
		}
		if err != nil {
			t.Fatal(err)
		}
		defer empty.Close()
		etx, err := empty.ReadSnapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer etx.Rollback()
		for e, err := range EventsBetweenOn(ctx, etx, empty.Dialect(), "", "") {
			t.Fatalf("an event in a database without otp's tables: %+v, %v", e, err)
		}
	})
}
