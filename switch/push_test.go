package payswitch_test

import (
	"context"
	"strings"
	"testing"

	"github.com/payswitch/payswitch/internal/pgtest"
	"github.com/payswitch/payswitch/outbox"

	. "github.com/payswitch/payswitch/switch"
)

// With USSDPush on, a request to pay is queued twice in its transaction: the SMS that
// carries the code, and the USSD push screen that names the payment and carries no code.
func TestRequestToPayQueuesUSSDPush(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		ctx := context.Background()
		h := newHarness(t)
		h.cfg.USSDPush = true
		h.restart()
		h.wallet(alice, 100000)
		m := h.merchant("55501", mama)
		p, err := h.engine.RequestPayment(ctx, PaymentRequest{Merchant: m.ID, MSISDN: alice, Amount: 15000,
			Reference: "INV-7", Description: "Order 7"})
		if err != nil {
			t.Fatal(err)
		}
		code := h.codeIn(alice, "request")
		ms, err := h.outbox.List(ctx, alice, 10)
		if err != nil {
			t.Fatal(err)
		}
		var push *outbox.Message
		for i := range ms {
			if ms[i].Purpose == outbox.PurposeRequestPush {
				push = &ms[i]
			}
		}
		if push == nil {
			t.Fatalf("no push queued: %+v", ms)
		}
		if push.Meta[outbox.MetaPushPayment] != p.ID || push.PaymentID != p.ID {
			t.Errorf("push names %q / %q, want %s", push.Meta[outbox.MetaPushPayment], push.PaymentID, p.ID)
		}
		for _, want := range []string{p.ID, "Order 7", "1. Pay", "2. Refuse"} {
			if !strings.Contains(push.Text, want) {
				t.Errorf("push screen %q lacks %q", push.Text, want)
			}
		}
		if strings.Contains(push.Text, code) {
			t.Errorf("push screen %q carries the code", push.Text)
		}
	})
}

// Without USSDPush (the default), only the SMS is queued.
func TestRequestToPayWithoutPush(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h := newHarness(t)
		h.wallet(alice, 100000)
		m := h.merchant("55501", mama)
		h.requestTo(m, alice, 15000, "INV-8")
		ms, err := h.outbox.List(context.Background(), alice, 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, msg := range ms {
			if msg.Purpose == outbox.PurposeRequestPush {
				t.Fatalf("a push was queued with pushes off: %+v", msg)
			}
		}
	})
}
