package payswitch_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/payswitch/payswitch/internal/pgtest"
	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/otp"
	"github.com/payswitch/payswitch/store"
	. "github.com/payswitch/payswitch/switch"
)

// lockKey is the id numbers' key of the LOCK tests.
var lockKey = []byte("0123456789abcdef0123456789abcdef")

const (
	ownerID   = "12345678"
	stranger  = "254711000077" // the phone a LOCK is sent from
	stranger2 = "254711000078"
)

// lockHarness is a harness whose engine knows the id numbers' key, with alice's wallet
// at tier 2 with ownerID recorded (as the tiers' PATCH would: the row is written here).
func lockHarness(t *testing.T) (*harness, ledger.Account) {
	h := newHarness(t)
	h.cfg.IDNumberKey = lockKey
	h.restart()
	w := h.wallet(alice, 100000)
	h.recordTier(w.ID, TierFull, ownerID)
	return h, w
}

// recordTier writes account's wallet_kyc row: its tier and, when id is not "", the
// digest of its id number.
func (h *harness) recordTier(account string, tier int, id string) {
	h.t.Helper()
	digest := ""
	if id != "" {
		digest = IDNumberDigest(lockKey, id)
	}
	err := h.db.Write(context.Background(), func(tx store.Tx) error {
		_, err := tx.ExecContext(context.Background(), `INSERT INTO wallet_kyc (account_id, tier, id_digest, updated_at)
			VALUES (?, ?, ?, 0) ON CONFLICT (account_id) DO UPDATE SET tier = excluded.tier, id_digest = excluded.id_digest`,
			account, tier, digest)
		return err
	})
	if err != nil {
		h.t.Fatal(err)
	}
}

// walletEvents are the authentication history's entries about msisdn that concern no
// payment (locks and unlocks), each as "event detail".
func (h *harness) walletEvents(msisdn string) []string {
	h.t.Helper()
	var out []string
	masked := Mask(msisdn)
	err := otp.Events(context.Background(), h.db.Reader(), func(e otp.Event) error {
		if e.PaymentID == "" && e.MSISDN == masked {
			out = append(out, e.Event+" "+e.Channel+" "+e.Detail)
		}
		return nil
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

func (h *harness) status(id string) ledger.Status {
	h.t.Helper()
	a, err := h.ledger.Account(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return a.Status
}

// LOCK with the right id number freezes the wallet at once, cancels its waiting payment
// with the hold released, declines a merchant's request waiting for it, tells its
// number, and answers the sender neutrally; the history has it without the id number.
func TestLockFreezesAndEndsWhatWaits(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h, w := lockHarness(t)
		h.wallet(bob, 0)
		shop := h.merchant("55501", mama)
		h.sms(alice, "SEND "+bob+" 300")
		p := h.pendingOf(alice)
		if b := h.balance(w.ID); b.Held != 30000 {
			t.Fatalf("held %d before the lock", b.Held)
		}
		req := h.requestTo(shop, alice, 5000, "inv-1")

		h.sms(stranger, "lock 0700000001 "+ownerID)

		if s := h.status(w.ID); s != ledger.Frozen {
			t.Fatalf("wallet %s after LOCK", s)
		}
		if b := h.balance(w.ID); b.Held != 0 || b.Posted != 100000 {
			t.Fatalf("balance after LOCK: %+v", b)
		}
		if got := h.payment(p.ID).State; got != StateCancelled {
			t.Fatalf("pending payment %s", got)
		}
		if got := h.payment(req.ID).State; got != StateDeclined {
			t.Fatalf("merchant's request %s", got)
		}
		if m := h.last(stranger); !strings.Contains(m.Text, "If the number and id number match") {
			t.Fatalf("sender told %q", m.Text)
		}
		if m := h.last(alice); m.Purpose != "wallet_locked" || !strings.Contains(m.Text, "was locked") ||
			!strings.Contains(m.Text, Mask(stranger)) {
			t.Fatalf("owner told %s %q", m.Purpose, m.Text)
		}
		ev := h.walletEvents(alice)
		if len(ev) != 1 || !strings.HasPrefix(ev[0], "locked sms id number matched; wallet frozen") {
			t.Fatalf("history %q", ev)
		}
		h.noIDNumberStored()
		// A frozen payer starts nothing, by any channel.
		h.sms(alice, "SEND "+bob+" 100")
		if p := h.pendingOf(alice); p != nil {
			t.Fatalf("frozen wallet started %s", p.ID)
		}
		h.assertBalanced()
	})
}

// noIDNumberStored checks that no table of the switch keeps the id number in clear.
func (h *harness) noIDNumberStored() {
	h.t.Helper()
	var n int
	for _, q := range []string{`SELECT count(*) FROM auth_events WHERE detail LIKE '%` + ownerID + `%'`,
		`SELECT count(*) FROM account_changes WHERE reason LIKE '%` + ownerID + `%'`,
		`SELECT count(*) FROM lock_attempts WHERE subject LIKE '%` + ownerID + `%'`} {
		if err := h.db.Reader().QueryRow(q).Scan(&n); err != nil || n != 0 {
			h.t.Fatalf("%s: %d (%v)", q, n, err)
		}
	}
}

// The sender's answer is the same for a wrong id number, a number without a wallet, a
// wallet without tier 2 and the right id number: LOCK is no oracle. Only the right one
// changes anything.
func TestLockAnswersAlike(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h, w := lockHarness(t)
		carol := "254700000003"
		c := h.wallet(carol, 5000) // tier 1, no id number
		answers := map[string]string{}
		for name, text := range map[string]string{
			"wrong id":  "LOCK " + alice + " 87654321",
			"no wallet": "LOCK 254700000999 " + ownerID,
			"no tier 2": "LOCK " + carol + " " + ownerID,
		} {
			before := h.count(alice)
			h.sms(stranger, text)
			answers[name] = h.last(stranger).Text
			if h.count(alice) != before {
				t.Errorf("%s: the wallet's number was told something", name)
			}
		}
		if h.status(w.ID) != ledger.Active || h.status(c.ID) != ledger.Active {
			t.Fatal("a LOCK without the right id number froze a wallet")
		}
		h.sms(stranger2, "LOCK "+alice+" "+ownerID)
		answers["right id"] = h.last(stranger2).Text
		for name, a := range answers {
			if a != answers["right id"] {
				t.Errorf("%s answered %q, the right id %q", name, a, answers["right id"])
			}
		}
		if h.status(w.ID) != ledger.Frozen {
			t.Fatal("the right id number did not lock")
		}
		// Already frozen: the same answer again, nothing more.
		h.sms(stranger2, "LOCK "+alice+" "+ownerID)
		if got := h.last(stranger2).Text; got != answers["right id"] {
			t.Errorf("already frozen answered %q", got)
		}
		ev := h.walletEvents(alice)
		want := []string{"lock_refused sms wrong id number", "locked sms id number matched; wallet frozen", "locked sms id number matched; already frozen"}
		if len(ev) != len(want) {
			t.Fatalf("history %q", ev)
		}
		for i := range want {
			if !strings.HasPrefix(ev[i], want[i]) {
				t.Errorf("history[%d] %q, want %q...", i, ev[i], want[i])
			}
		}
		if ev := h.walletEvents(carol); len(ev) != 1 || !strings.HasPrefix(ev[0], "lock_refused sms no id number recorded") {
			t.Errorf("carol's history %q", ev)
		}
		h.noIDNumberStored()
	})
}

// Wrong id numbers for one wallet stop being checked after three a day, whoever sends
// them (its owner is told once); one sender gets five LOCKs a day, matched or not, and
// is then told so. Neither limit freezes anything or touches the owner's payments, and
// both end with their window.
func TestLockLimits(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h, w := lockHarness(t)
		for i, from := range []string{"254711000001", "254711000002", "254711000003"} {
			h.sms(from, "LOCK "+alice+" 1111111"+string(rune('0'+i)))
		}
		if m := h.last(alice); m.Purpose != "lock_warning" {
			t.Fatalf("owner not warned: %s %q", m.Purpose, m.Text)
		}
		warned := h.count(alice)
		// The right id number is no longer checked for this wallet today.
		h.sms("254711000004", "LOCK "+alice+" "+ownerID)
		if h.status(w.ID) != ledger.Active {
			t.Fatal("id number checked past the wallet's limit")
		}
		if !strings.Contains(h.last("254711000004").Text, "If the number and id") {
			t.Fatalf("limited wallet answered %q", h.last("254711000004").Text)
		}
		if h.count(alice) != warned {
			t.Fatal("owner warned twice")
		}
		// The owner still pays.
		h.wallet(bob, 0)
		h.sms(alice, "SEND "+bob+" 100")
		if h.pendingOf(alice) == nil {
			t.Fatal("the LOCK flood kept the owner from paying")
		}
		h.sms(alice, h.code(alice))

		// One sender: five a day, then told it is limited, and nothing is checked.
		carol := "254700000003"
		c := h.wallet(carol, 0)
		h.recordTier(c.ID, TierFull, "99999")
		for i := range 5 {
			h.sms(stranger, "LOCK 254700000"+string(rune('5'+i))+"00 "+ownerID)
		}
		h.sms(stranger, "LOCK "+carol+" 99999")
		if !strings.Contains(h.last(stranger).Text, "Too many LOCK requests") || h.status(c.ID) != ledger.Active {
			t.Fatalf("sender past its limit: %q, carol %s", h.last(stranger).Text, h.status(c.ID))
		}
		if ev := h.walletEvents(carol); len(ev) != 1 || !strings.Contains(ev[0], "limited: too many from the sender") {
			t.Fatalf("carol's history %q", ev)
		}
		// A day later both windows have passed.
		h.clock.Advance(24*time.Hour + time.Second)
		h.sms(stranger, "LOCK "+carol+" 99999")
		h.sms(stranger, "LOCK "+alice+" "+ownerID)
		if h.status(c.ID) != ledger.Frozen || h.status(w.ID) != ledger.Frozen {
			t.Fatalf("after the window: carol %s, alice %s", h.status(c.ID), h.status(w.ID))
		}
		var rows int
		if err := h.db.Reader().QueryRow(`SELECT count(*) FROM lock_attempts`).Scan(&rows); err != nil || rows != 2 {
			t.Fatalf("lock_attempts has %d rows after the window (%v): want the sender's and the senders' count", rows, err)
		}
	})
}

// An id number with spaces or letters, or a LOCK without both words, is answered with
// its usage and changes nothing; only an operator reactivates, which the history shows.
func TestLockUsageAndOperatorUnlock(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h, w := lockHarness(t)
		for _, text := range []string{"LOCK", "LOCK " + alice, "LOCK " + alice + " 1234 5678", "LOCK " + alice + " AB123456",
			"LOCK " + alice + " 1234"} {
			h.sms(stranger, text)
			if m := h.last(stranger); !strings.Contains(m.Text, "LOCK <wallet number> <id number>") {
				t.Errorf("%q answered %q", text, m.Text)
			}
		}
		h.sms(stranger, "LOCK 12 "+ownerID)
		if m := h.last(stranger); strings.Contains(m.Text, "If the number and id") {
			t.Errorf("a bad wallet number answered %q", m.Text)
		}
		if _, err := h.engine.LockWallet(context.Background(), ChannelSMS, stranger, alice, "12 34"); !errors.Is(err, ErrBadIDNumber) {
			t.Errorf("LockWallet with a bad id number: %v", err)
		}
		if h.status(w.ID) != ledger.Active || len(h.walletEvents(alice)) != 0 {
			t.Fatal("a malformed LOCK changed something")
		}
		h.sms(stranger, "LOCK "+alice+" "+ownerID)
		// No SMS unfreezes: the owner's texts are refused, START is about merchants.
		for _, text := range []string{"START 55501", "UNLOCK", "LOCK " + alice + " " + ownerID} {
			h.sms(alice, text)
		}
		if h.status(w.ID) != ledger.Frozen {
			t.Fatal("an SMS unfroze the wallet")
		}
		if _, err := h.engine.SetAccountStatus(context.Background(), AccountStatusChange{Account: w.ID, Status: ledger.Active,
			Reason: "owner came with ID", Actor: "ops-1"}); err != nil {
			t.Fatal(err)
		}
		ev := h.walletEvents(alice)
		if n := len(ev); n < 2 || ev[n-1] != "unlocked api by operator ops-1" {
			t.Fatalf("history %q", ev)
		}
		changes, err := h.engine.AccountChanges(context.Background(), w.ID, 10)
		if err != nil || len(changes) != 2 || changes[1].Actor != "lock" || !strings.Contains(changes[1].Reason, Mask(stranger)) {
			t.Fatalf("account changes %+v (%v)", changes, err)
		}
	})
}
