package otp

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/payswitch/payswitch/internal/pgtest"

	"github.com/payswitch/payswitch/store"
)

func TestLoadOrCreateSecret(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "otp.secret")
	first, err := LoadOrCreateSecret(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 32 {
		t.Fatalf("new secret is %d bytes, want 32", len(first))
	}
	for p, want := range map[string]os.FileMode{path: 0o600, filepath.Dir(path): 0o700} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %#o, want %#o", p, got, want)
		}
	}
	again, err := LoadOrCreateSecret(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, again) {
		t.Fatal("second load returned a different secret")
	}
	if _, err := NewIssuer(again, Config{}); err != nil {
		t.Fatalf("loaded secret unusable: %v", err)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".otp-secret-*")); len(leftovers) > 0 {
		t.Fatalf("temporary files left behind: %v", leftovers)
	}
}

func TestLoadSecretRefusesBadFiles(t *testing.T) {
	for _, tc := range []struct {
		name    string
		content string
		mode    os.FileMode
	}{
		{"group readable", strings.Repeat("ab", 32), 0o640},
		{"world readable", strings.Repeat("ab", 32), 0o604},
		{"group writable", strings.Repeat("ab", 32), 0o620},
		{"not hex", strings.Repeat("zz", 32), 0o600},
		{"too short", strings.Repeat("ab", 15), 0o600},
		{"empty", "", 0o600},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "otp.secret")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			_, err := LoadOrCreateSecret(path)
			if !errors.Is(err, ErrBadSecret) || !strings.Contains(err.Error(), path) {
				t.Fatalf("err = %v, want ErrBadSecret naming %s", err, path)
			}
			if got, _ := os.ReadFile(path); string(got) != tc.content {
				t.Fatal("a refused secret file was changed")
			}
		})
	}
}

func TestParseSecret(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []byte // nil: ErrBadSecret
	}{
		{"hex 16 bytes", "000102030405060708090a0b0c0d0e0f", []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}},
		{"hex with spaces around", "  " + strings.Repeat("ff", 20) + "\n", bytes.Repeat([]byte{0xff}, 20)},
		{"upper-case hex", strings.Repeat("AB", 16), bytes.Repeat([]byte{0xab}, 16)},
		{"raw passphrase", "correct horse battery staple!!!!", []byte("correct horse battery staple!!!!")},
		{"short hex", strings.Repeat("ab", 15), nil},
		{"short passphrase", "correct horse battery staple", nil},
		{"empty", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseSecret(tc.in)
			if tc.want == nil {
				if !errors.Is(err, ErrBadSecret) {
					t.Fatalf("err = %v, want ErrBadSecret", err)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tc.want) {
				t.Fatalf("ParseSecret = %x, %v; want %x", got, err, tc.want)
			}
		})
	}
}

func TestMask(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"254700000001", "2547****001"},
		{"+254700000001", "+254****001"},
		{"25470001", "2547****001"},
		{"2547****001", "2547****001"},
		{"2547000", "25****"},
		{"22333", "22****"},
		{"1234", "****"},
		{"", ""},
	} {
		t.Run(tc.in, func(t *testing.T) {
			if got := Mask(tc.in); got != tc.want {
				t.Fatalf("Mask(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestAuthEvents(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		db := mustOpen(t)
		nairobi := time.FixedZone("EAT", 3*3600)
		events := []Event{
			{Time: t0.In(nairobi).Add(123456 * time.Microsecond), PaymentID: "PAYAAAAAAA", MSISDN: "254700000001", Channel: "sms", Event: EventIssued},
			{Time: t0.Add(time.Second), PaymentID: "PAYAAAAAAA", MSISDN: "254700000001", Channel: "sms", Event: EventWrong, Detail: "2 attempts left"},
			{Time: t0.Add(2 * time.Second), PaymentID: "PAYAAAAAAA", MSISDN: "254700000001", Channel: "ussd", Event: EventConfirmed},
		}
		write(t, db, func(tx store.Tx) error {
			for _, e := range events {
				if err := RecordEvent(ctx, tx, e); err != nil {
					return err
				}
			}
			return nil
		})
		for _, tc := range []struct {
			name string
			e    Event
		}{
			{"unknown event", Event{Time: t0, PaymentID: "PAYAAAAAAA", Event: "guessed"}},
			{"no time", Event{PaymentID: "PAYAAAAAAA", Event: EventWrong}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				err := db.Write(ctx, func(tx store.Tx) error { return RecordEvent(ctx, tx, tc.e) })
				if !errors.Is(err, ErrBadEvent) {
					t.Fatalf("err = %v, want ErrBadEvent", err)
				}
			})
		}
		var got []Event
		if err := Events(ctx, db.Reader(), func(e Event) error { got = append(got, e); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(got) != len(events) {
			t.Fatalf("got %d events, want %d", len(got), len(events))
		}
		for n, e := range events {
			want := e
			want.Time = e.Time.UTC()
			want.MSISDN = "2547****001"
			if got[n] != want {
				t.Errorf("event %d = %+v, want %+v", n, got[n], want)
			}
		}
		var raw string
		if err := db.Reader().QueryRow(`SELECT time FROM auth_events ORDER BY seq LIMIT 1`).Scan(&raw); err != nil {
			t.Fatal(err)
		}
		if raw != "2026-03-01T10:00:00.123456Z" {
			t.Fatalf("stored time %q, want RFC 3339 UTC with microseconds", raw)
		}
		stop := errors.New("stop")
		n := 0
		if err := Events(ctx, db.Reader(), func(Event) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
			t.Fatalf("Events with a failing fn: err = %v after %d calls, want stop after 1", err, n)
		}
	})
}
