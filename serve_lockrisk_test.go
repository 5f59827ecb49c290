package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/audit"
	"github.com/payswitch/payswitch/store"
)

// riskYAML grades payments of KES 1,000 or more high, refuses till 66601, and lets
// KES 20 or less to a payee paid before through without a code.
const riskYAML = `risk:
  frictionless: true
  high_ttl: 2m
  low_max_amount: 2000
  high_amount: 100000
  block_merchants: ["66601"]
`

// recordIDNumber writes account's tier 2 with id's keyed digest under the key serve
// derives from its secret, as the tiers' PATCH would (written directly: that PATCH is
// another branch's).
func (s *testSwitch) recordIDNumber(account, id string) {
	s.t.Helper()
	secret, err := otpSecret(s.config(), zerolog.Nop())
	if err != nil {
		s.t.Fatal(err)
	}
	m := hmac.New(sha256.New, idNumberKey(secret))
	m.Write([]byte("payswitch id number v1\x00"))
	m.Write([]byte(id))
	err = s.app.db.Write(context.Background(), func(tx store.Tx) error {
		_, err := tx.ExecContext(context.Background(), `INSERT INTO wallet_kyc (account_id, tier, id_digest, updated_at)
			VALUES (?, 2, ?, 0)`, account, hex.EncodeToString(m.Sum(nil)))
		return err
	})
	if err != nil {
		s.t.Fatal(err)
	}
}

// TestLockAndRiskEndToEnd: through a running switch, its SMPP link and the simulated
// network, a borrowed phone locks a lost one's wallet (its waiting payment cancelled and
// the hold released, its number told), the operator reactivates it over the API; risk
// grading blocks, steps up and waves through; the auditor's export carries it all.
func TestLockAndRiskEndToEnd(t *testing.T) {
	s := startSwitchWith(t, "5m", riskYAML)
	w := s.open(map[string]string{"type": "wallet", "msisdn": alice, "name": "Alice"})
	s.open(map[string]string{"type": "wallet", "msisdn": bob, "name": "Bob"})
	s.open(map[string]string{"type": "merchant", "code": "55501", "name": "Mama Mboga"})
	s.open(map[string]string{"type": "merchant", "code": "66601", "name": "Shady"})
	a, bb, borrowed := s.phone(alice), s.phone(bob), s.phone("254711000077")
	s.deposit(w.ID, 500000, "CASHIN-1")
	a.expect("deposited")
	s.recordIDNumber(w.ID, "12345678")

	t.Run("block", func(t *testing.T) {
		a.send("PAY 66601 10")
		a.expect("this payment cannot be made")
		if s.account(w.ID).Balance.Held != 0 {
			t.Fatal("a blocked payment held money")
		}
	})
	t.Run("high: one attempt", func(t *testing.T) {
		a.send("SEND 0700000002 1000")
		code := codeIn(t, a.expect("KES 1,000.00", "within 2 min"))
		wrong := "000000"
		if code == wrong {
			wrong = "111111"
		}
		a.send(wrong)
		a.expect("too many wrong codes")
		if s.account(w.ID).Balance.Held != 0 {
			t.Fatal("hold kept")
		}
	})
	t.Run("low: normal first, then without a code", func(t *testing.T) {
		a.send("SEND 0700000002 10")
		a.send(codeIn(t, a.expect("KES 10.00")))
		a.expect("confirmed")
		bb.expect("received")
		a.send("SEND 0700000002 15")
		a.expect("confirmed", "KES 15.00")
		bb.expect("received", "KES 15.00")
	})
	t.Run("LOCK from a borrowed phone", func(t *testing.T) {
		a.send("PAY 55501 100")
		a.expect("KES 100.00")
		if s.account(w.ID).Balance.Held != 10000 {
			t.Fatal("not held")
		}
		borrowed.send("LOCK 0700000001 87654321")
		wrong := borrowed.expect("If the number and id number match")
		borrowed.send("LOCK 0700000001 12345678")
		if right := borrowed.expect("If the number and id number match"); right != wrong {
			t.Fatalf("answers differ: %q, %q", wrong, right)
		}
		a.expect("was locked", "2547****077")
		if bal := s.account(w.ID).Balance; bal.Held != 0 {
			t.Fatalf("after LOCK: %+v", bal)
		}
		a.send("SEND 0700000002 10")
		a.expect("not active")
		if code := s.call("PATCH", "/api/v1/accounts/"+w.ID, opsToken,
			map[string]string{"status": "active", "reason": "owner came with ID"}, nil); code != http.StatusOK {
			t.Fatalf("reactivate: %d", code)
		}
		a.send("SEND 0700000002 10")
		a.expect("KES 10.00")
	})

	dir := filepath.Join(t.TempDir(), "export")
	if _, err := audit.Export(context.Background(), s.app.db.Reader(), dir, audit.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := audit.Verify(dir); err != nil {
		t.Fatalf("the export does not verify: %v", err)
	}
	f, err := os.Open(filepath.Join(dir, audit.AuthEventsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	for _, r := range rows[1:] {
		all = append(all, strings.Join(r[2:], " "))
	}
	text := strings.Join(all, "\n")
	for _, want := range []string{"sms blocked risk block: blocked_merchant", "sms issued risk high: amount",
		"sms confirmed no code: risk low: known_payee", "2547****001 sms lock_refused wrong id number; from 2547****077",
		"2547****001 sms locked id number matched; wallet frozen; from 2547****077", "2547****001 api unlocked by operator ops"} {
		if !strings.Contains(text, want) {
			t.Errorf("auth_events.csv lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "12345678") || strings.Contains(text, "87654321") {
		t.Error("an id number is in the export")
	}
}
