package payswitch_test

import (
	"context"
	"testing"

	"github.com/payswitch/payswitch/ledger"

	. "github.com/payswitch/payswitch/switch"
)

// The payee a request drafts from is kept, but only what never changes: a merchant
// frozen after it was kept is still refused, and paid again once active; a code that
// named no account is read again, so a till opened later is found.
func TestPayeeCacheKeepsOnlyWhatNeverChanges(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	h.wallet(alice, 100000)
	m := h.merchant("55501", mama)
	pay := func(code string) Outcome {
		t.Helper()
		out, err := h.engine.Request(ctx, Request{Channel: ChannelUSSD, Type: MerchantPayment, Payer: alice, Merchant: code, Amount: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if out.OK() {
			if _, err := h.engine.Cancel(ctx, ChannelUSSD, alice, out.Payment.ID); err != nil {
				t.Fatal(err)
			}
		}
		return out
	}
	if out := pay("55501"); !out.OK() {
		t.Fatalf("first payment: %+v", out)
	}
	if kept, ok := h.engine.CachedPayee("code:55501"); !ok || kept.ID != m.ID || kept.Status != "" || kept.Balance != (ledger.Balance{}) {
		t.Fatalf("kept %+v (%v): want the merchant without status or balance", kept, ok)
	}
	if err := h.ledger.SetStatus(ctx, m.ID, ledger.Frozen); err != nil {
		t.Fatal(err)
	}
	if out := pay("55501"); out.Problem != ProblemPayeeInactive {
		t.Fatalf("paying a frozen merchant: %+v", out)
	}
	if err := h.ledger.SetStatus(ctx, m.ID, ledger.Active); err != nil {
		t.Fatal(err)
	}
	if out := pay("55501"); !out.OK() {
		t.Fatalf("paying it once active again: %+v", out)
	}
	if out := pay("55502"); out.Problem != ProblemUnknownMerchant {
		t.Fatalf("unknown till: %+v", out)
	}
	h.merchant("55502", "254700000901")
	if out := pay("55502"); !out.OK() {
		t.Fatalf("a till opened after a request named it: %+v", out)
	}
}
