package payswitch

import (
	"errors"
	"strings"
	"testing"

	"github.com/payswitch/payswitch/ledger"
)

// completedPayment is a completed merchant payment of KES 150 from alice to Mama Mboga.
func completedPayment() *Payment {
	p := waitingPayment()
	p.State, p.TransferID = StateCompleted, "TRPAID"
	return p
}

func TestDecideRefund(t *testing.T) {
	r := testRules(t)
	shop := &ledger.Account{ID: "ACSHOP", Type: ledger.Merchant, Balance: ledger.Balance{Posted: 20000, Available: 20000}}
	poor := &ledger.Account{ID: "ACSHOP", Type: ledger.Merchant, Balance: ledger.Balance{Posted: 20000, Held: 19500, Available: 500}}
	earlier := &Refund{ID: "RFAAAAAAAA", PaymentID: "PAYAAAAAAA", Merchant: "ACSHOP", Amount: 5000, Reference: "R-1"}
	with := func(f func(p *Payment)) *Payment { p := completedPayment(); f(p); return p }
	for _, tc := range []struct {
		name     string
		merchant string // the asking key's merchant; "" for an operator
		payment  *Payment
		prev     *Refund
		account  *ledger.Account
		refunds  int
		amount   int64
		err      error
		move     Event  // the payment's move, if any
		messages string // purposes of the messages queued
		repeat   bool   // the answer is prev, nothing written
	}{
		{name: "part, by the merchant", merchant: "ACSHOP", payment: completedPayment(), account: shop, amount: 5000,
			messages: "refund,refund"},
		{name: "part, by an operator", payment: completedPayment(), account: shop, amount: 5000, messages: "refund,refund"},
		{name: "all of it", merchant: "ACSHOP", payment: completedPayment(), account: shop, amount: 15000,
			move: EvRefundWhole, messages: "refund,refund"},
		{name: "the rest after a part", payment: with(func(p *Payment) { p.Refunded = 5000 }), account: shop, amount: 10000,
			move: EvRefundWhole, messages: "refund,refund"},
		{name: "a merchant without a phone is not told", payment: with(func(p *Payment) { p.PayeeMSISDN = "" }),
			account: shop, amount: 100, messages: "refund"},
		{name: "more than was paid", payment: completedPayment(), account: shop, amount: 15001, err: ErrRefundTooMuch},
		{name: "more than is left", payment: with(func(p *Payment) { p.Refunded = 14000 }), account: shop, amount: 1001,
			err: ErrRefundTooMuch},
		{name: "all refunded already", payment: with(func(p *Payment) { p.Refunded, p.State = 15000, StateRefunded }),
			account: shop, amount: 1, err: ErrRefundTooMuch},
		{name: "the merchant is short", payment: completedPayment(), account: poor, amount: 501, err: ErrInsufficientFund},
		{name: "the merchant has just enough", payment: completedPayment(), account: poor, amount: 500, messages: "refund,refund"},
		{name: "another merchant's payment", merchant: "ACOTHER", payment: completedPayment(), amount: 100, err: ErrNotFound},
		{name: "no such payment", amount: 100, err: ErrNotFound},
		{name: "waiting for its code", payment: waitingPayment(), account: shop, amount: 100, err: ErrNotRefundable},
		{name: "reversed", payment: with(func(p *Payment) { p.State = StateReversed }), account: shop, amount: 100,
			err: ErrNotRefundable},
		{name: "in escrow", payment: with(func(p *Payment) { p.State = StateInEscrow }), account: shop, amount: 100,
			err: ErrNotRefundable},
		{name: "failed", payment: with(func(p *Payment) { p.State = StateFailed }), account: shop, amount: 100,
			err: ErrNotRefundable},
		{name: "a transfer between wallets", payment: with(func(p *Payment) { p.Type = TransferPayment }), account: shop,
			amount: 100, err: ErrNotRefundable},
		{name: "no amount", payment: completedPayment(), account: shop, amount: 0, err: ErrInvalid},
		{name: "too many refunds", payment: completedPayment(), account: shop, refunds: maxRefundsPerPayment, amount: 100,
			err: ErrRefundLimit},
		{name: "the same reference again", merchant: "ACSHOP", payment: completedPayment(), prev: earlier, amount: 5000,
			repeat: true},
		{name: "the same reference after the payment was refunded whole", payment: with(func(p *Payment) {
			p.Refunded, p.State = 15000, StateRefunded
		}), prev: earlier, amount: 5000, repeat: true},
		{name: "the same reference, another amount", payment: completedPayment(), prev: earlier, amount: 6000, err: ErrConflict},
		{name: "the same reference, another payment", payment: with(func(p *Payment) { p.ID = "PAYBBBBBBB" }), prev: earlier,
			amount: 5000, err: ErrConflict},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := refundSnapshot{Now: decideNow, Payment: tc.payment, Prev: tc.prev, Merchant: tc.account,
				Refunds: tc.refunds, NewID: "RFNEWNEWNE", Request: RefundRequest{PaymentID: "PAYAAAAAAA",
					Merchant: tc.merchant, Amount: tc.amount, Reference: "R-1", Reason: "damaged", Actor: "web-shop"}}
			d, rf := r.decideRefund(s)
			if !errors.Is(d.Err, tc.err) || (tc.err == nil) != (d.Err == nil) {
				t.Fatalf("err %v, want %v", d.Err, tc.err)
			}
			if tc.err != nil {
				if rf != nil || d.Refund != nil || d.Move != "" || len(d.Messages) > 0 || len(d.Events) > 0 {
					t.Fatalf("a refusal decided %+v, %+v", d, rf)
				}
				return
			}
			if tc.repeat {
				if rf != tc.prev || d.Refund != nil || d.Payment != nil || len(d.Messages) > 0 || len(d.Events) > 0 {
					t.Fatalf("a repeat decided %+v, answered %+v", d, rf)
				}
				return
			}
			p := tc.payment
			e := d.Refund
			if e == nil || rf != &e.Refund || d.Move != tc.move || purposes(d.Messages) != tc.messages {
				t.Fatalf("refund %+v move %q messages %s", e, d.Move, purposes(d.Messages))
			}
			want := ledger.TransferRequest{Key: "refund:ACSHOP:R-1", Debit: "ACSHOP", Credit: p.PayerAccount,
				Amount: tc.amount, PaymentID: p.ID, Kind: KindRefund}
			if e.Transfer != want || e.Before != p.Refunded {
				t.Fatalf("transfer %+v before %d", e.Transfer, e.Before)
			}
			if rf.ID != "RFNEWNEWNE" || rf.PaymentID != p.ID || rf.Merchant != "ACSHOP" || rf.Amount != tc.amount ||
				rf.Reference != "R-1" || rf.Reason != "damaged" || rf.Actor != "web-shop" || !rf.CreatedAt.Equal(decideNow) {
				t.Fatalf("refund row %+v", rf)
			}
			if len(d.Events) != 1 || d.Events[0] != EventPaymentRefunded || d.Payment != p ||
				d.eventSubject() != p.ID+"/RFNEWNEWNE" {
				t.Fatalf("events %v about %s, payment %v", d.Events, d.eventSubject(), d.Payment)
			}
			payer := d.Messages[0]
			if payer.To != p.PayerMSISDN || payer.Key != "refund_payer" || payer.Vars["amount"] != r.money(tc.amount) ||
				payer.Balance.Account != p.PayerAccount || payer.Vars["id"] != p.ID {
				t.Fatalf("payer's message %+v", payer)
			}
			if text := r.texts.Render(payer.Key, payer.Vars); !strings.Contains(text, "Mama Mboga (55501)") {
				t.Fatalf("payer's text %q does not name the merchant", text)
			}
			if len(d.Messages) == 2 && (d.Messages[1].To != p.PayeeMSISDN || d.Messages[1].Balance.Account != "ACSHOP") {
				t.Fatalf("merchant's message %+v", d.Messages[1])
			}
		})
	}
}

// A reversal gives back the whole payment: after a refund it would give back more than
// was paid, so it is refused, and names what is left to refund instead.
func TestDecideReverseAfterRefund(t *testing.T) {
	r := testRules(t)
	p := completedPayment()
	p.Refunded = 5000
	d := r.reverse(reverseSnapshot{Payment: p, Reference: "REV-1", Reason: "fraud"})
	if !errors.Is(d.Err, ErrConflict) || !strings.Contains(d.Err.Error(), "KES 100.00") || d.Reverse {
		t.Fatalf("%+v", d)
	}
	p.Refunded = 0
	if d := r.reverse(reverseSnapshot{Payment: p, Reference: "REV-1", Reason: "fraud"}); d.Err != nil || !d.Reverse {
		t.Fatalf("without refunds: %+v", d)
	}
}

// The ledger's refusals are the caller's errors.
func TestRefundRefused(t *testing.T) {
	r := testRules(t)
	q := RefundRequest{Reference: "R-1"}
	for in, want := range map[error]error{
		ledger.ErrInsufficientFunds:   ErrInsufficientFund,
		ledger.ErrAccountInactive:     ErrNotRefundable,
		ledger.ErrIdempotencyConflict: ErrConflict,
	} {
		if err := r.refundRefused(q, in); !errors.Is(err, want) {
			t.Errorf("%v: %v, want %v", in, err, want)
		}
	}
}
