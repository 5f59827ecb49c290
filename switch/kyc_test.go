package payswitch_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/payswitch/payswitch/internal/pgtest"
	"github.com/payswitch/payswitch/ledger"
	. "github.com/payswitch/payswitch/switch"
)

// newTierHarness is the harness with the shipped config.yaml's tier table (KES 5,000 /
// 1,000 / 2,000 at tier 0; 100,000 / 70,000 / 140,000 at tier 1; 500,000 / 150,000 /
// 300,000 at tier 2) and a key for id numbers.
func newTierHarness(t *testing.T) *harness {
	h := newHarness(t)
	h.cfg.Tiers = [3]Tier{{MaxBalance: 500000, MaxPayment: 100000, DailyMax: 200000},
		{MaxBalance: 10000000, MaxPayment: 7000000, DailyMax: 14000000},
		{MaxBalance: 50000000, MaxPayment: 15000000, DailyMax: 30000000}}
	h.cfg.IDNumberKey = []byte("id key of the tier tests")
	h.restart()
	return h
}

func (h *harness) tier(id string) int {
	h.t.Helper()
	n, err := h.engine.AccountTier(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return n
}

// TestSetAccountTier raises a wallet to tier 2 and lowers it again through the engine,
// on a real database: a tier 2 needs a valid id number, refusals change nothing, and
// the history names who and why, never the number.
func TestSetAccountTier(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h := newTierHarness(t)
		ctx := context.Background()
		w := h.wallet(alice, 1000)
		if got := h.tier(w.ID); got != DefaultTier {
			t.Fatalf("a new wallet is at tier %d", got)
		}
		for _, tc := range []struct {
			name string
			c    AccountTierChange
			want error
		}{
			{"tier 2 without an id number", AccountTierChange{Tier: 2}, ErrInvalid},
			{"an id number with letters", AccountTierChange{Tier: 2, IDNumber: "AB123456"}, ErrBadIDNumber},
			{"an id number with spaces", AccountTierChange{Tier: 2, IDNumber: "123 45678"}, ErrBadIDNumber},
			{"the same tier", AccountTierChange{Tier: 1}, ErrConflict},
		} {
			c := tc.c
			c.Account, c.Reason, c.Actor = w.ID, "documents seen", "ops-anne"
			if _, err := h.engine.SetAccountTier(ctx, c); !errors.Is(err, tc.want) {
				t.Errorf("%s: %v; want %v", tc.name, err, tc.want)
			}
		}
		m := h.merchant("55501", mama)
		if _, err := h.engine.SetAccountTier(ctx, AccountTierChange{Account: m.ID, Tier: 0, Reason: "x", Actor: "ops"}); !errors.Is(err, ErrInvalid) {
			t.Errorf("a merchant's tier: %v", err)
		}
		if cs, _ := h.engine.AccountChanges(ctx, w.ID, 10); len(cs) != 0 || h.tier(w.ID) != 1 {
			t.Fatalf("refusals wrote %+v, tier %d", cs, h.tier(w.ID))
		}

		a, err := h.engine.SetAccountTier(ctx, AccountTierChange{Account: w.ID, Tier: 2, IDNumber: "27182818",
			Reason: "national id seen at the branch", Actor: "ops-anne"})
		if err != nil || a.ID != w.ID || h.tier(w.ID) != 2 {
			t.Fatalf("raise: %+v, %v, tier %d", a, err, h.tier(w.ID))
		}
		if _, err := h.engine.SetAccountTier(ctx, AccountTierChange{Account: w.ID, Tier: 0,
			Reason: "asked by compliance", Actor: "ops-ben"}); err != nil || h.tier(w.ID) != 0 {
			t.Fatalf("lower: %v, tier %d", err, h.tier(w.ID))
		}
		cs, err := h.engine.AccountChanges(ctx, w.ID, 10)
		if err != nil || len(cs) != 3 {
			t.Fatalf("history %+v, %v", cs, err)
		}
		var rows []string
		for _, c := range cs {
			if strings.Contains(c.Old+c.New+c.Reason, "27182818") {
				t.Fatalf("the history shows the id number: %+v", c)
			}
			rows = append(rows, c.Field+" "+c.Old+">"+c.New+" by "+c.Actor+": "+c.Reason)
		}
		want := []string{"tier 2>0 by ops-ben: asked by compliance", "id_number none>on file by ops-anne: national id seen at the branch",
			"tier 1>2 by ops-anne: national id seen at the branch"}
		if strings.Join(rows, "\n") != strings.Join(want, "\n") {
			t.Fatalf("history\n%s\nwant\n%s", strings.Join(rows, "\n"), strings.Join(want, "\n"))
		}
		// Opening at a tier: a wallet may say so, and tier 2 needs the id number there too.
		two := 2
		if _, err := h.engine.OpenAccount(ctx, OpenAccount{Type: ledger.Wallet, Name: "B", MSISDN: bob, Tier: &two}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("open at tier 2 without an id number: %v", err)
		}
		b, err := h.engine.OpenAccount(ctx, OpenAccount{Type: ledger.Wallet, Name: "B", MSISDN: bob, Tier: &two, IDNumber: "31415926"})
		if err != nil || h.tier(b.ID) != 2 {
			t.Fatalf("open at tier 2: %v, tier %d", err, h.tier(b.ID))
		}
		if _, err := h.engine.OpenAccount(ctx, OpenAccount{Type: ledger.Merchant, Name: "M", Code: "55502", MSISDN: "254700000901",
			Tier: &two}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("a merchant opened at a tier: %v", err)
		}
	})
}

// TestTierLimitsApplied: a payment's largest amount and the payer's day come from its
// wallet's tier, read in the request's write.
func TestTierLimitsApplied(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h := newTierHarness(t)
		ctx := context.Background()
		w := h.wallet(alice, 400000)
		h.merchant("55501", mama)
		if _, err := h.engine.SetAccountTier(ctx, AccountTierChange{Account: w.ID, Tier: 0, Reason: "no documents", Actor: "ops"}); err != nil {
			t.Fatal(err)
		}
		h.sms(alice, "PAY 55501 1001")
		if txt := h.last(alice).Text; !strings.Contains(txt, "largest payment is "+money(100000)) || h.pendingOf(alice) != nil {
			t.Fatalf("above tier 0's max payment: %q", txt)
		}
		h.sms(alice, "PAY 55501 1000")
		h.sms(alice, h.code(alice))
		h.sms(alice, "PAY 55501 1000")
		h.sms(alice, h.code(alice))
		h.sms(alice, "PAY 55501 1")
		if txt := h.last(alice).Text; !strings.Contains(txt, "daily limit of "+money(200000)) {
			t.Fatalf("past tier 0's day: %q", txt)
		}
		// Raised to tier 1, the same wallet has room again today.
		if _, err := h.engine.SetAccountTier(ctx, AccountTierChange{Account: w.ID, Tier: 1, Reason: "documents seen", Actor: "ops"}); err != nil {
			t.Fatal(err)
		}
		h.sms(alice, "PAY 55501 1500")
		if p := h.pendingOf(alice); p == nil || p.Amount != 150000 {
			t.Fatalf("tier 1 payment: %+v, %q", p, h.last(alice).Text)
		}
	})
}

// TestDepositOverTheCapRefused: a deposit that would take a wallet past its tier's
// maximum balance is refused, and nothing moves; up to the cap it is booked.
func TestDepositOverTheCapRefused(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h := newTierHarness(t)
		ctx := context.Background()
		w := h.wallet(alice, 0)
		if _, err := h.engine.SetAccountTier(ctx, AccountTierChange{Account: w.ID, Tier: 0, Reason: "no documents", Actor: "ops"}); err != nil {
			t.Fatal(err)
		}
		if _, err := h.engine.Deposit(ctx, Deposit{Account: w.ID, Amount: 400000, Reference: "d1"}); err != nil {
			t.Fatal(err)
		}
		sent := h.count(alice)
		_, err := h.engine.Deposit(ctx, Deposit{Account: w.ID, Amount: 100001, Reference: "d2"})
		if !errors.Is(err, ErrBalanceCap) || !strings.Contains(err.Error(), "maximum balance of "+money(500000)) {
			t.Fatalf("over the cap: %v", err)
		}
		if b := h.balance(w.ID); b.Posted != 400000 || h.count(alice) != sent {
			t.Fatalf("a refused deposit moved %+v or told the wallet", b)
		}
		if p, _ := h.engine.Payments(ctx, alice, 10); len(p) != 1 {
			t.Fatalf("payments after the refusal: %d", len(p))
		}
		if _, err := h.engine.Deposit(ctx, Deposit{Account: w.ID, Amount: 100000, Reference: "d2"}); err != nil {
			t.Fatalf("up to the cap: %v", err)
		}
		// A merchant has no cap.
		m := h.merchant("55501", mama)
		if _, err := h.engine.Deposit(ctx, Deposit{Account: m.ID, Amount: 90000000, Reference: "d3"}); err != nil {
			t.Fatalf("a merchant's deposit: %v", err)
		}
		h.assertBalanced()
	})
}

// TestSendOverTheRecipientsCapRefusedAtConfirmation: a SEND whose recipient would pass
// its tier's cap is requested as usual, then refused when its right code comes: the
// held funds are released, the payment failed, both sides told; nothing moved.
func TestSendOverTheRecipientsCapRefusedAtConfirmation(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h := newTierHarness(t)
		ctx := context.Background()
		a := h.wallet(alice, 500000)
		b := h.wallet(bob, 0)
		if _, err := h.engine.SetAccountTier(ctx, AccountTierChange{Account: b.ID, Tier: 0, Reason: "no documents", Actor: "ops"}); err != nil {
			t.Fatal(err)
		}
		if _, err := h.engine.Deposit(ctx, Deposit{Account: b.ID, Amount: 450000, Reference: "b1"}); err != nil {
			t.Fatal(err)
		}
		h.sms(alice, "SEND 0700000002 600")
		p := h.pendingOf(alice)
		if p == nil || h.balance(a.ID).Held != 60000 {
			t.Fatalf("the SEND waits with its funds held: %+v, %+v", p, h.balance(a.ID))
		}
		h.sms(alice, h.code(alice))
		got, err := h.engine.Payment(ctx, p.ID)
		if err != nil || got.State != StateFailed || !strings.Contains(got.Reason, "maximum balance") {
			t.Fatalf("payment %+v, %v", got, err)
		}
		if ba, bb := h.balance(a.ID), h.balance(b.ID); ba.Held != 0 || ba.Posted != 500000 || bb.Posted != 450000 {
			t.Fatalf("balances after the refusal: alice %+v, bob %+v", ba, bb)
		}
		if m := h.last(alice); m.Purpose != "failed" || !strings.Contains(m.Text, "cannot receive "+money(60000)) {
			t.Fatalf("sender told %+v", m)
		}
		if m := h.last(bob); !strings.Contains(m.Text, "limit of "+money(500000)) || strings.Contains(m.Text, money(450000)) {
			t.Fatalf("recipient told %+v", m)
		}
		// Within the cap the same transfer goes through.
		h.sms(alice, "SEND 0700000002 500")
		h.sms(alice, h.code(alice))
		if bb := h.balance(b.ID); bb.Posted != 500000 {
			t.Fatalf("up to the cap: %+v, %q", bb, h.last(alice).Text)
		}
		h.assertBalanced()
	})
}
