package ivr

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/store"
	payswitch "github.com/payswitch/payswitch/switch"
)

var lockKey = []byte("0123456789abcdef0123456789abcdef")

// lockRig is a harness whose engine knows the id numbers' key, with alice's wallet at
// tier 2 and its id number recorded (the row the tiers' PATCH writes).
func lockRig(t *testing.T) (*harness, ledger.Account) {
	h := newHarness(t, options{engine: func(c *payswitch.Config) { c.IDNumberKey = lockKey }})
	w := h.Wallet(alice, 100000)
	err := h.DB.Write(context.Background(), func(tx store.Tx) error {
		_, err := tx.ExecContext(context.Background(), `INSERT INTO wallet_kyc (account_id, tier, id_digest, updated_at)
			VALUES (?, 2, ?, 0)`, w.ID, idDigest(lockKey, "12345678"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return h, w
}

// idDigest is the engine's keyed digest of an id number (payswitch's idNumberDigest),
// written out here because the engine keeps it to itself.
func idDigest(key []byte, id string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("payswitch id number v1\x00"))
	m.Write([]byte(id))
	return hex.EncodeToString(m.Sum(nil))
}

func (h *harness) status(id string) ledger.Status {
	h.t.Helper()
	a, err := h.Ledger.Account(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return a.Status
}

// A caller without an account presses 9, keys the lost phone's number and its owner's id
// number: the wallet is locked, and the caller hears the neutral answer, which a wrong
// id number gets too.
func TestLockByVoice(t *testing.T) {
	h, w := lockRig(t)
	c := h.inbound("lost", "0711000077")
	wantPrompt(t, c.key(""), 1, "To lock the wallet of a lost phone, press 9.")
	wantPrompt(t, c.key("9"), 0, "Enter the phone number of the wallet to lock")
	wantPrompt(t, c.key("12#"), 0, "That is not a valid phone number.", "Enter the phone number")
	wantPrompt(t, c.key("0700000001#"), 0, "Enter the wallet owner's id number")
	wantPrompt(t, c.key("1234#"), 0, "An id number has 5 to 20 digits.", "id number")
	wrong := c.key("87654321#")
	wantFinal(t, wrong, "If the number and id number match our records")
	if h.status(w.ID) != ledger.Active {
		t.Fatal("a wrong id number locked the wallet")
	}

	// A registered caller finds it at 9 on the menu.
	h.Wallet(bob, 0)
	c = h.inbound("bob", bob)
	wantPrompt(t, c.key(""), 1, "9 to lock the wallet of a lost phone")
	c.key("9")
	c.key(alice + "#")
	right := c.key("12345678#")
	if right.text() != wrong.text() {
		t.Fatalf("answers differ: %q and %q", right.text(), wrong.text())
	}
	if h.status(w.ID) != ledger.Frozen {
		t.Fatal("the right id number did not lock the wallet")
	}
	if m := h.Messages(alice, 1); len(m) != 1 || m[0].Purpose != "wallet_locked" || !strings.Contains(m[0].Text, "was locked") {
		t.Fatalf("the owner was told %+v", m)
	}
}

// A payment graded low with frictionless on completes at once: the caller hears it is
// complete instead of being asked for a code.
func TestFrictionlessByVoice(t *testing.T) {
	h := newHarness(t, options{engine: func(c *payswitch.Config) {
		c.Risk = &payswitch.Risk{Frictionless: true, LowMaxAmount: 50000}
	}})
	h.Wallet(alice, 100000)
	h.Merchant(till, "Mama Mboga", mama)
	pay := func(id string) Response {
		c := h.inbound(id, alice)
		for _, k := range []string{"", "1", till + "#"} {
			c.key(k)
		}
		return c.key("150#")
	}
	first := pay("first") // a new payee: the code step
	wantPrompt(t, first, 6, "A code was sent to you by SMS")
	c := h.inbound("first", alice)
	wantFinal(t, c.key(h.code(alice)+"#"), "is complete")
	second := pay("second")
	p := h.lastPayment(alice)
	wantFinal(t, second, "Payment "+Spell(p.ID)+" is complete.", "Your new balance is seven hundred shillings.")
	if p.State != payswitch.StateCompleted || p.Risk != payswitch.RiskLow {
		t.Fatalf("second payment %+v", p)
	}
}
