package otp

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/payswitch/payswitch/internal/pgtest"

	"github.com/payswitch/payswitch/store"
)

// readStored reads the code of id in tx the way a caller joining otp_codes does.
func readStored(tx store.Tx, id string) (*Stored, error) {
	var s Stored
	var one int
	dest := append([]any{&one}, s.Dest()...)
	err := tx.QueryRowContext(ctx, `SELECT 1, `+StoredColumns("c")+`
		FROM (SELECT ? AS id) AS p LEFT JOIN otp_codes AS c ON c.payment_id = p.id`, id).Scan(dest...)
	return &s, err
}

func TestDrawnCodeIsIssuedLikeIssue(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		db, i := mustOpen(t), mustIssuer(t, Config{})
		b := binding("PAYDRAWN01")
		d, err := i.Draw(b)
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Code) != 6 || strings.Trim(d.Code, "0123456789") != "" {
			t.Fatalf("drawn code %q: want 6 digits", d.Code)
		}
		var exp time.Time
		write(t, db, func(tx store.Tx) (err error) { exp, err = i.IssueDrawn(ctx, tx, d, t0); return err })
		if !exp.Equal(t0.Add(DefaultTTL)) {
			t.Fatalf("expires %v, want %v", exp, t0.Add(DefaultTTL))
		}
		if err := db.Write(ctx, func(tx store.Tx) error { _, err := i.IssueDrawn(ctx, tx, d, t0); return err }); !errors.Is(err, ErrAlreadyIssued) {
			t.Fatalf("the same drawn code again: %v, want ErrAlreadyIssued", err)
		}
		if err := db.Write(ctx, func(tx store.Tx) error {
			_, err := i.IssueDrawn(ctx, tx, Drawn{Binding: binding("PAYDRAWN02"), Code: "123456"}, t0)
			return err
		}); err == nil {
			t.Fatal("a Drawn not made by Draw was stored")
		}
		if res := check(t, db, i, b, d.Code, t0.Add(time.Second)); !res.OK {
			t.Fatalf("check of the drawn code: %+v", res)
		}
	})
}

func TestCheckAttemptWithStoredRow(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		cases := []struct {
			name  string
			input func(code string) string
			at    time.Duration
			want  Result
		}{
			{"right code", func(c string) string { return c }, time.Second, Result{OK: true, AttemptsLeft: 3}},
			{"wrong code", wrongCode, time.Second, Result{AttemptsLeft: 2}},
			{"malformed", func(c string) string { return "x" + c[1:] }, time.Second, Result{AttemptsLeft: 2}},
			{"expired", func(c string) string { return c }, DefaultTTL, Result{Expired: true}},
		}
		for n, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				db, i := mustOpen(t), mustIssuer(t, Config{})
				b := binding("PAYSTORED" + string(rune('0'+n)))
				code := issue(t, db, i, b, t0)
				a := i.Attempt(b, tc.input(code))
				var res Result
				write(t, db, func(tx store.Tx) error {
					s, err := readStored(tx, b.PaymentID)
					if err != nil {
						return err
					}
					res, err = i.CheckAttempt(ctx, tx, a, s, t0.Add(tc.at))
					return err
				})
				if res != tc.want {
					t.Fatalf("got %+v, want %+v", res, tc.want)
				}
				// What it stored is what Check then sees.
				after := check(t, db, i, b, code, t0.Add(2*time.Second))
				switch {
				case tc.want.OK && after != (Result{Used: true}):
					t.Fatalf("after a right code: %+v, want Used", after)
				case tc.want.Expired && after != (Result{Expired: true}):
					t.Fatalf("after expiry: %+v, want Expired", after)
				case !tc.want.OK && !tc.want.Expired && after != (Result{OK: true, AttemptsLeft: 2}):
					t.Fatalf("after a wrong code: %+v, want OK with 2 left", after)
				}
			})
		}
	})
}

func TestCheckAttemptMissingAndForeignRows(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		db, i := mustOpen(t), mustIssuer(t, Config{})
		b := binding("PAYNOCODE1")
		var res Result
		write(t, db, func(tx store.Tx) error {
			s, err := readStored(tx, b.PaymentID)
			if err != nil {
				return err
			}
			res, err = i.CheckAttempt(ctx, tx, i.Attempt(b, "123456"), s, t0)
			return err
		})
		if res != (Result{Missing: true}) {
			t.Fatalf("no code: %+v, want Missing", res)
		}
		other := binding("PAYOTHER01")
		issue(t, db, i, other, t0)
		err := db.Write(ctx, func(tx store.Tx) error {
			s, err := readStored(tx, other.PaymentID)
			if err != nil {
				return err
			}
			_, err = i.CheckAttempt(ctx, tx, i.Attempt(b, "123456"), s, t0)
			return err
		})
		if err == nil {
			t.Fatal("a code row of another payment was accepted")
		}
	})
}

// A Stored read before other attempts (misuse: it belongs to the same transaction) still
// cannot give a guesser fresh attempts, nor revive a dead code.
func TestStaleStoredCountsEveryAttempt(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		db, i := mustOpen(t), mustIssuer(t, Config{})
		b := binding("PAYSTALE01")
		code := issue(t, db, i, b, t0)
		var stale *Stored
		write(t, db, func(tx store.Tx) (err error) { stale, err = readStored(tx, b.PaymentID); return err })
		var results []Result
		for range 3 {
			write(t, db, func(tx store.Tx) error {
				res, err := i.CheckAttempt(ctx, tx, i.Attempt(b, wrongCode(code)), stale, t0)
				results = append(results, res)
				return err
			})
		}
		want := []Result{{AttemptsLeft: 2}, {AttemptsLeft: 1}, {Exhausted: true}}
		for n := range want {
			if results[n] != want[n] {
				t.Fatalf("attempt %d with a stale row: %+v, want %+v", n+1, results[n], want[n])
			}
		}
		// The stale row says active: the write that would use the code matches nothing,
		// so the code is read again and judged as it stands.
		var res Result
		write(t, db, func(tx store.Tx) (err error) {
			res, err = i.CheckAttempt(ctx, tx, i.Attempt(b, code), stale, t0)
			return err
		})
		if res != (Result{Exhausted: true}) {
			t.Fatalf("the right code with a stale row: %+v, want Exhausted (not revived)", res)
		}
		if res := check(t, db, i, b, code, t0); res != (Result{Exhausted: true}) {
			t.Fatalf("after all: %+v, want Exhausted", res)
		}
	})
}

// A request to pay's code lives as long as the request: until the expiry its issuer
// names, not Config.TTL.
func TestIssueDrawnUntil(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		db, i := mustOpen(t), mustIssuer(t, Config{})
		b := binding("PAYUNTIL01")
		d, err := i.Draw(b)
		if err != nil {
			t.Fatal(err)
		}
		until := t0.Add(2 * time.Hour)
		if err := db.Write(ctx, func(tx store.Tx) error { return i.IssueDrawnUntil(ctx, tx, d, t0, t0) }); err == nil {
			t.Fatal("a code that expires as it is issued was stored")
		}
		write(t, db, func(tx store.Tx) error { return i.IssueDrawnUntil(ctx, tx, d, t0, until) })
		if err := db.Write(ctx, func(tx store.Tx) error { return i.IssueDrawnUntil(ctx, tx, d, t0, until) }); !errors.Is(err, ErrAlreadyIssued) {
			t.Fatalf("the same code again: %v, want ErrAlreadyIssued", err)
		}
		if res := check(t, db, i, b, d.Code, t0.Add(time.Hour)); !res.OK {
			t.Fatalf("an hour on, past Config.TTL: %+v, want OK", res)
		}
		e, err := i.Draw(binding("PAYUNTIL02"))
		if err != nil {
			t.Fatal(err)
		}
		write(t, db, func(tx store.Tx) error { return i.IssueDrawnUntil(ctx, tx, e, t0, until) })
		if res := check(t, db, i, e.Binding, e.Code, until); res != (Result{Expired: true}) {
			t.Fatalf("at its expiry: %+v, want Expired", res)
		}
	})
}

// Matches tells which stored code an attempt is, and changes nothing: no attempt is
// counted, and the code still works after.
func TestStoredMatches(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		db, i := mustOpen(t), mustIssuer(t, Config{})
		a, b := binding("PAYMATCH01"), binding("PAYMATCH02")
		codeA, codeB := issue(t, db, i, a, t0), issue(t, db, i, b, t0)
		write(t, db, func(tx store.Tx) error {
			sa, err := readStored(tx, a.PaymentID)
			if err != nil {
				return err
			}
			sb, err := readStored(tx, b.PaymentID)
			if err != nil {
				return err
			}
			for _, c := range []struct {
				name   string
				stored *Stored
				at     Attempt
				want   bool
			}{
				{"A's code for A", sa, i.Attempt(a, codeA), true},
				{"A's code for B", sb, i.Attempt(b, codeA), codeA == codeB},
				{"A's code digested for B, against A", sa, i.Attempt(b, codeA), false},
				{"a wrong code", sa, i.Attempt(a, wrongCode(codeA)), false},
				{"malformed", sa, i.Attempt(a, "x"+codeA[1:]), false},
				{"no code stored", &Stored{}, i.Attempt(a, codeA), false},
			} {
				if got := c.stored.Matches(c.at); got != c.want {
					t.Errorf("%s: %v, want %v", c.name, got, c.want)
				}
			}
			return nil
		})
		if res := check(t, db, i, a, codeA, t0.Add(time.Second)); res != (Result{OK: true, AttemptsLeft: 3}) {
			t.Fatalf("after Matches, A's code: %+v, want OK with every try left", res)
		}
	})
}
