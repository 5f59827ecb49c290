package otp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/payswitch/payswitch/internal/dbtest"

	"github.com/payswitch/payswitch/internal/pgtest"
	"github.com/payswitch/payswitch/store"
)

var (
	testSecret = []byte("0123456789abcdef0123456789abcdef")
	t0         = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	ctx        = context.Background()
)

func binding(id string) Binding {
	return Binding{PaymentID: id, Payer: "254700000001", Payee: "merchant:55501", Amount: 150050, Currency: "KES"}
}

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// driverOf is the driver of the pgtest.Both subtest tb is, or runs inside.
var driverOf = dbtest.Dialect

// mustOpen opens a new database of tb's driver (driverOf) with otp's schema.
func mustOpen(tb testing.TB) *store.DB {
	tb.Helper()
	return dbtest.Open(tb, store.Options{}, Schema)
}

// openNodes opens n nodes on one new database of tb's driver (dbtest.Nodes).
func openNodes(tb testing.TB, n int) []*store.DB { return dbtest.Nodes(tb, n, store.Options{}, Schema) }

func mustIssuer(tb testing.TB, cfg Config) *Issuer {
	tb.Helper()
	i, err := NewIssuer(testSecret, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return i
}

// write runs fn in its own store transaction and fails the test on error.
func write(tb testing.TB, db *store.DB, fn func(tx store.Tx) error) {
	tb.Helper()
	if err := db.Write(ctx, fn); err != nil {
		tb.Fatal(err)
	}
}

func issue(tb testing.TB, db *store.DB, i *Issuer, b Binding, now time.Time) string {
	tb.Helper()
	var code string
	write(tb, db, func(tx store.Tx) error {
		c, _, err := i.Issue(ctx, tx, b, now)
		code = c
		return err
	})
	return code
}

func check(tb testing.TB, db *store.DB, i *Issuer, b Binding, code string, now time.Time) Result {
	tb.Helper()
	var res Result
	write(tb, db, func(tx store.Tx) error {
		r, err := i.Check(ctx, tx, b, code, now)
		res = r
		return err
	})
	return res
}

func resend(db *store.DB, i *Issuer, b Binding, now time.Time) (string, error) {
	var code string
	err := db.Write(ctx, func(tx store.Tx) error {
		c, _, err := i.Resend(ctx, tx, b, now)
		code = c
		return err
	})
	return code, err
}

// wrongCode is a well-formed code that differs from code in its last digit.
func wrongCode(code string) string {
	last := code[len(code)-1]
	return code[:len(code)-1] + string('0'+(last-'0'+1)%10)
}

func TestCodesAreUniformDigitsWithLeadingZeros(t *testing.T) {
	for _, digits := range []int{4, 6, 10} {
		t.Run(fmt.Sprint(digits), func(t *testing.T) {
			i := mustIssuer(t, Config{Digits: digits})
			const n = 100_000
			var all [10]int   // every digit of every code
			var first [10]int // the first digit only: leading zeros must be as common as any
			for range n {
				code, err := i.newCode()
				if err != nil {
					t.Fatal(err)
				}
				if len(code) != digits {
					t.Fatalf("code %q has %d digits, want %d", code, len(code), digits)
				}
				for j, c := range []byte(code) {
					if c < '0' || c > '9' {
						t.Fatalf("code %q has a non-digit", code)
					}
					all[c-'0']++
					if j == 0 {
						first[c-'0']++
					}
				}
			}
			// Chi-square with 9 degrees of freedom: p = 0.0001 at 33.7. Plain byte%10 over
			// 600k digits would score around 100 (0..5 each 2.4% too common).
			for name, counts := range map[string][10]int{"all digits": all, "first digit": first} {
				total := 0
				for _, c := range counts {
					total += c
				}
				exp := float64(total) / 10
				chi := 0.0
				for _, c := range counts {
					d := float64(c) - exp
					chi += d * d / exp
				}
				if chi > 40 {
					t.Errorf("%s: chi-square %.1f over %v: not uniform", name, chi, counts)
				}
			}
			if first[0] < n/20 {
				t.Errorf("only %d of %d codes start with 0", first[0], n)
			}
		})
	}
}

func TestNewIssuerConfig(t *testing.T) {
	i := mustIssuer(t, Config{})
	want := Config{Digits: 6, TTL: 5 * time.Minute, MaxAttempts: 3, MaxResends: 3, ResendInterval: 30 * time.Second}
	if got := i.Config(); got != want {
		t.Fatalf("defaults = %+v, want %+v", got, want)
	}
	custom := Config{Digits: 8, TTL: time.Minute, MaxAttempts: 5, MaxResends: 1, ResendInterval: time.Second}
	if got := mustIssuer(t, custom).Config(); got != custom {
		t.Fatalf("config = %+v, want %+v", got, custom)
	}
	for _, tc := range []struct {
		name   string
		secret []byte
		cfg    Config
	}{
		{"short secret", []byte("0123456789abcde"), Config{}},
		{"3 digits", testSecret, Config{Digits: 3}},
		{"11 digits", testSecret, Config{Digits: 11}},
		{"negative ttl", testSecret, Config{TTL: -time.Second}},
		{"negative attempts", testSecret, Config{MaxAttempts: -1}},
		{"negative resends", testSecret, Config{MaxResends: -1}},
		{"negative interval", testSecret, Config{ResendInterval: -time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewIssuer(tc.secret, tc.cfg); !errors.Is(err, ErrBadConfig) {
				t.Fatalf("err = %v, want ErrBadConfig", err)
			}
		})
	}
}

func TestRightCodeWorksOnce(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		db, i := mustOpen(t), mustIssuer(t, Config{})
		b := binding("PAYAAAAAAA")
		code := issue(t, db, i, b, t0)
		if res := check(t, db, i, b, code, t0.Add(time.Minute)); res != (Result{OK: true, AttemptsLeft: 3}) {
			t.Fatalf("first check = %+v, want OK", res)
		}
		if res := check(t, db, i, b, code, t0.Add(time.Minute)); res != (Result{Used: true}) {
			t.Fatalf("second check = %+v, want Used", res)
		}
		var err error
		write(t, db, func(tx store.Tx) error { _, _, err = i.Issue(ctx, tx, b, t0); return nil })
		if !errors.Is(err, ErrAlreadyIssued) {
			t.Fatalf("issue again: err = %v, want ErrAlreadyIssued", err)
		}
	})
}

func TestWrongCodesCountAndExhaust(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		db, i := mustOpen(t), mustIssuer(t, Config{})
		b := binding("PAYBBBBBBB")
		code := issue(t, db, i, b, t0)
		now := t0.Add(time.Second)
		// Malformed input is a wrong attempt like any other.
		for n, bad := range []string{wrongCode(code), "12a45" + code[5:], code + "0"} {
			res := check(t, db, i, b, bad, now)
			if n < 2 {
				if res != (Result{AttemptsLeft: 2 - n}) {
					t.Fatalf("wrong code %d: %+v, want %d attempts left", n+1, res, 2-n)
				}
				continue
			}
			if res != (Result{Exhausted: true}) {
				t.Fatalf("third wrong code: %+v, want Exhausted", res)
			}
		}
		// The right code no longer helps, and nothing more is counted.
		if res := check(t, db, i, b, code, now); res != (Result{Exhausted: true}) {
			t.Fatalf("right code after exhaustion: %+v, want Exhausted", res)
		}
		if _, err := resend(db, i, b, now.Add(time.Hour)); !errors.Is(err, ErrNoCode) {
			t.Fatalf("resend after exhaustion: err = %v, want ErrNoCode", err)
		}
	})
}

func TestMalformedInputIsWrong(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		db, i := mustOpen(t), mustIssuer(t, Config{MaxAttempts: 10})
		b := binding("PAYMMMMMMM")
		code := issue(t, db, i, b, t0)
		for n, tc := range []struct{ name, input string }{
			{"empty", ""},
			{"short", code[:5]},
			{"long", code + "1"},
			{"leading space", " " + code[:5]},
			{"trailing space", code[:5] + " "},
			{"letter", "a" + code[1:]},
			{"arabic-indic digit", "٣" + code[2:]},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if res := check(t, db, i, b, tc.input, t0); res != (Result{AttemptsLeft: 9 - n}) {
					t.Fatalf("%q: %+v, want wrong with %d left", tc.input, res, 9-n)
				}
			})
		}
	})
}

func TestExpiryAtTTLBoundary(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		db, i := mustOpen(t), mustIssuer(t, Config{TTL: 2 * time.Minute})
		before, at := binding("PAYCCCCCCC"), binding("PAYDDDDDDD")
		var expiresAt time.Time
		var code1 string
		write(t, db, func(tx store.Tx) (err error) {
			code1, expiresAt, err = i.Issue(ctx, tx, before, t0)
			return err
		})
		if !expiresAt.Equal(t0.Add(2 * time.Minute)) {
			t.Fatalf("expiresAt = %v, want %v", expiresAt, t0.Add(2*time.Minute))
		}
		code2 := issue(t, db, i, at, t0)
		if res := check(t, db, i, before, code1, expiresAt.Add(-time.Microsecond)); !res.OK {
			t.Fatalf("1µs before expiry: %+v, want OK", res)
		}
		if res := check(t, db, i, at, code2, expiresAt); res != (Result{Expired: true}) {
			t.Fatalf("at expiry: %+v, want Expired", res)
		}
		// Expired sticks, even if a caller's clock goes backwards.
		if res := check(t, db, i, at, code2, t0); res != (Result{Expired: true}) {
			t.Fatalf("after expiry: %+v, want Expired", res)
		}
	})
}

func TestCodeIsBoundToItsPayment(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		b := binding("PAYEEEEEEE")
		for _, tc := range []struct {
			name   string
			change func(*Binding)
		}{
			{"other payer", func(x *Binding) { x.Payer = "254700000002" }},
			{"other payee", func(x *Binding) { x.Payee = "merchant:55502" }},
			{"other amount", func(x *Binding) { x.Amount++ }},
			{"other currency", func(x *Binding) { x.Currency = "UGX" }},
			{"payer and payee swapped", func(x *Binding) { x.Payer, x.Payee = x.Payee, x.Payer }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				db, i := mustOpen(t), mustIssuer(t, Config{})
				code := issue(t, db, i, b, t0)
				other := b
				tc.change(&other)
				if res := check(t, db, i, other, code, t0); res != (Result{AttemptsLeft: 2}) {
					t.Fatalf("%+v, want a wrong code", res)
				}
				if res := check(t, db, i, b, code, t0); !res.OK {
					t.Fatalf("own binding after: %+v, want OK", res)
				}
			})
		}
		t.Run("other payment", func(t *testing.T) {
			db, i := mustOpen(t), mustIssuer(t, Config{})
			code := issue(t, db, i, b, t0)
			otherCode := issue(t, db, i, binding("PAYFFFFFFF"), t0)
			if code == otherCode {
				t.Skip("the two random codes collided")
			}
			if res := check(t, db, i, binding("PAYFFFFFFF"), code, t0); res != (Result{AttemptsLeft: 2}) {
				t.Fatalf("%+v, want a wrong code", res)
			}
			if res := check(t, db, i, binding("PAYGGGGGGG"), code, t0); res != (Result{Missing: true}) {
				t.Fatalf("payment without a code: %+v, want Missing", res)
			}
		})
	})
}

func TestResendReplacesCodeWithinLimits(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		db, i := mustOpen(t), mustIssuer(t, Config{MaxResends: 2, ResendInterval: 30 * time.Second, TTL: time.Minute})
		b := binding("PAYHHHHHHH")
		old := issue(t, db, i, b, t0)

		if _, err := resend(db, i, b, t0.Add(30*time.Second-time.Microsecond)); !errors.Is(err, ErrResendTooSoon) {
			t.Fatalf("resend before the interval: err = %v, want ErrResendTooSoon", err)
		}
		// Resending a code that already timed out is allowed and restarts the TTL.
		now := t0.Add(2 * time.Minute)
		code1, err := resend(db, i, b, now)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := resend(db, i, b, now.Add(29*time.Second)); !errors.Is(err, ErrResendTooSoon) {
			t.Fatalf("second resend too soon: err = %v, want ErrResendTooSoon", err)
		}
		now = now.Add(30 * time.Second)
		code2, err := resend(db, i, b, now)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := resend(db, i, b, now.Add(time.Hour)); !errors.Is(err, ErrResendLimit) {
			t.Fatalf("third resend: err = %v, want ErrResendLimit", err)
		}
		for _, dead := range []string{old, code1} {
			if dead == code2 {
				continue // the random codes collided; nothing to learn
			}
			if res := check(t, db, i, b, dead, now); res.OK {
				t.Fatalf("replaced code %s still works", dead)
			}
		}
		if res := check(t, db, i, b, code2, now.Add(59*time.Second)); !res.OK {
			t.Fatalf("newest code: %+v, want OK", res)
		}
		if _, err := resend(db, i, b, now.Add(time.Hour)); !errors.Is(err, ErrNoCode) {
			t.Fatalf("resend after use: err = %v, want ErrNoCode", err)
		}
	})
}

func TestWrongAttemptsCarryOverResend(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		db, i := mustOpen(t), mustIssuer(t, Config{})
		b := binding("PAYIIIIIII")
		code := issue(t, db, i, b, t0)
		check(t, db, i, b, wrongCode(code), t0)
		check(t, db, i, b, wrongCode(code), t0)
		code, err := resend(db, i, b, t0.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if res := check(t, db, i, b, wrongCode(code), t0.Add(time.Minute)); res != (Result{Exhausted: true}) {
			t.Fatalf("third wrong code across a resend: %+v, want Exhausted", res)
		}
	})
}

func TestKill(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		db, i := mustOpen(t), mustIssuer(t, Config{})
		b := binding("PAYJJJJJJJ")
		code := issue(t, db, i, b, t0)
		write(t, db, func(tx store.Tx) error { return i.Kill(ctx, tx, b.PaymentID) })
		if res := check(t, db, i, b, code, t0); res != (Result{Missing: true}) {
			t.Fatalf("killed code: %+v, want Missing", res)
		}
		if _, err := resend(db, i, b, t0.Add(time.Hour)); !errors.Is(err, ErrNoCode) {
			t.Fatalf("resend after kill: err = %v, want ErrNoCode", err)
		}
		write(t, db, func(tx store.Tx) error { return i.Kill(ctx, tx, "PAYNOSUCH0") })
	})
}

func TestRolledBackCheckCountsNothing(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		db, i := mustOpen(t), mustIssuer(t, Config{})
		b := binding("PAYKKKKKKK")
		code := issue(t, db, i, b, t0)
		errAbort := errors.New("abort")
		for range 5 {
			err := db.Write(ctx, func(tx store.Tx) error {
				if _, err := i.Check(ctx, tx, b, wrongCode(code), t0); err != nil {
					return err
				}
				return errAbort
			})
			if !errors.Is(err, errAbort) {
				t.Fatal(err)
			}
		}
		if res := check(t, db, i, b, code, t0); res != (Result{OK: true, AttemptsLeft: 3}) {
			t.Fatalf("%+v, want OK with all attempts left", res)
		}
	})
}

func TestDatabaseHoldsNoCode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "otp.db")
	db, err := store.Open(path, store.Options{}, Schema)
	if err != nil {
		t.Fatal(err)
	}
	i := mustIssuer(t, Config{Digits: 10}) // long codes: a chance match in the file is ~impossible
	var codes []string
	for n := range 20 {
		b := binding(fmt.Sprintf("PAY%07d", n))
		code := issue(t, db, i, b, t0)
		codes = append(codes, code)
		write(t, db, func(tx store.Tx) error {
			return RecordEvent(ctx, tx, Event{Time: t0, PaymentID: b.PaymentID, MSISDN: b.Payer, Channel: "sms", Event: EventIssued})
		})
	}
	var dump bytes.Buffer
	rows, err := db.Reader().Query(`SELECT payment_id, digest, issued_at, expires_at, state FROM otp_codes`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, state string
		var digest []byte
		var issued, expires int64
		if err := rows.Scan(&id, &digest, &issued, &expires, &state); err != nil {
			t.Fatal(err)
		}
		if len(digest) != 32 {
			t.Fatalf("digest of %s is %d bytes, want 32", id, len(digest))
		}
		fmt.Fprintf(&dump, "%s %x %s %d %d\n", id, digest, digest, issued, expires)
	}
	rows.Close()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, code := range codes {
		if strings.Contains(dump.String(), code) {
			t.Fatalf("the table dump contains code %s", code)
		}
		if bytes.Contains(file, []byte(code)) {
			t.Fatalf("the database file contains code %s", code)
		}
	}
}

func BenchmarkIssueCheck(b *testing.B) {
	db, i := mustOpen(b), mustIssuer(b, Config{})
	n := 0
	for b.Loop() {
		bd := binding(fmt.Sprintf("PAY%07d", n))
		n++
		write(b, db, func(tx store.Tx) error {
			code, _, err := i.Issue(ctx, tx, bd, t0)
			if err != nil {
				return err
			}
			res, err := i.Check(ctx, tx, bd, code, t0)
			if err == nil && !res.OK {
				err = fmt.Errorf("check: %+v", res)
			}
			return err
		})
	}
}

// BenchmarkIssueCheckParallel is the same from many goroutines, as the engine calls it:
// the store's group commit shares one fsync among them.
func BenchmarkIssueCheckParallel(b *testing.B) {
	db, i := mustOpen(b), mustIssuer(b, Config{})
	var n atomic.Int64
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			bd := binding(fmt.Sprintf("PAY%07d", n.Add(1)))
			err := db.Write(ctx, func(tx store.Tx) error {
				code, _, err := i.Issue(ctx, tx, bd, t0)
				if err != nil {
					return err
				}
				res, err := i.Check(ctx, tx, bd, code, t0)
				if err == nil && !res.OK {
					err = fmt.Errorf("check: %+v", res)
				}
				return err
			})
			if err != nil {
				b.Error(err) // not Fatal: this is not the benchmark's goroutine
				return
			}
		}
	})
}

// BenchmarkIssueCheckCPU is the cost of the code work alone, without the database.
func BenchmarkIssueCheckCPU(b *testing.B) {
	i := mustIssuer(b, Config{})
	bd := binding("PAYAAAAAAA")
	for b.Loop() {
		code, err := i.newCode()
		if err != nil {
			b.Fatal(err)
		}
		d := i.digest(bd, code)
		if !bytes.Equal(d, i.digest(bd, code)) {
			b.Fatal("digest not stable")
		}
	}
}

func TestReissueIgnoresTheIntervalButNotTheLimit(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		db, i := mustOpen(t), mustIssuer(t, Config{MaxResends: 1, ResendInterval: 30 * time.Second, TTL: time.Minute})
		b := binding("PAYRRRRRRR")
		old := issue(t, db, i, b, t0)
		var code string
		err := db.Write(ctx, func(tx store.Tx) error {
			var err error
			code, _, err = i.Reissue(ctx, tx, b, t0.Add(time.Second)) // at once: the SMS never arrived
			return err
		})
		if err != nil {
			t.Fatalf("reissue right after issue: %v", err)
		}
		if err := db.Write(ctx, func(tx store.Tx) error {
			_, _, err := i.Reissue(ctx, tx, b, t0.Add(2*time.Second))
			return err
		}); !errors.Is(err, ErrResendLimit) {
			t.Fatalf("reissue past the limit: %v", err)
		}
		if res := check(t, db, i, b, old, t0.Add(3*time.Second)); res.OK {
			t.Fatal("the old code still works after a reissue")
		}
		if res := check(t, db, i, b, code, t0.Add(4*time.Second)); !res.OK {
			t.Fatalf("the reissued code: %+v", res)
		}
	})
}
