package payswitch_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/payswitch/payswitch/internal/pgtest"
	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/outbox"

	. "github.com/payswitch/payswitch/switch"
)

// messageFor is the newest message queued for msisdn with purpose, failing when none.
func (h *harness) messageFor(msisdn, purpose string) outbox.Message {
	h.t.Helper()
	ms, err := h.outbox.List(context.Background(), msisdn, 100)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, m := range ms {
		if m.Purpose == purpose {
			return m
		}
	}
	h.t.Fatalf("no %s message for %s among %d", purpose, msisdn, len(ms))
	return outbox.Message{}
}

// TestConfirmTellsTheBalancesAfterThePayment checks the balances a completed payment's
// receipt and payee notice print, which come from the posted transfer: the payer's
// (the debit side) and the payee's (the credit side) posted balance right after it, as
// the accounts then hold them. A zero balance is printed as zero, and an airtime payee
// (the carrier's clearing account) gets no notice.
func TestConfirmTellsTheBalancesAfterThePayment(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		for _, c := range []struct {
			name       string
			airtime    bool
			ahead      bool // confirmed by SMS, with the texts rendered ahead; else rendered in the transaction
			payer      int64
			payee      int64 // the payee's balance before; -1: no payee account of its own
			request    string
			wantPayer  string
			wantPayee  string // "" when no notice
			payeePhone string
		}{
			{name: "merchant payment", ahead: true, payer: 100000, payee: 5000, request: "PAY 55501 150",
				wantPayer: "New balance KES 850.00.", wantPayee: "New balance KES 200.00.", payeePhone: mama},
			{name: "merchant payment rendered in the transaction", payer: 100000, payee: 5000, request: "PAY 55501 150",
				wantPayer: "New balance KES 850.00.", wantPayee: "New balance KES 200.00.", payeePhone: mama},
			{name: "send the whole balance", ahead: true, payer: 20050, payee: 1000, request: "SEND 0700000002 200.50",
				wantPayer: "New balance KES 0.00.", wantPayee: "New balance KES 210.50.", payeePhone: bob},
			{name: "send rendered in the transaction", payer: 20050, payee: 1000, request: "SEND 0700000002 200.50",
				wantPayer: "New balance KES 0.00.", wantPayee: "New balance KES 210.50.", payeePhone: bob},
			{name: "airtime", airtime: true, ahead: true, payer: 100000, payee: -1, request: "TOPUP 50 0700000002",
				wantPayer: "New balance KES 950.00.", payeePhone: bob},
		} {
			t.Run(c.name, func(t *testing.T) {
				var h *harness
				if c.airtime {
					h, _ = newAirtimeHarness(t, AirtimeSuccess)
				} else {
					h = newHarness(t)
				}
				payer := h.wallet(alice, c.payer)
				var payee ledger.Account
				switch {
				case c.payee < 0:
				case c.payeePhone == mama:
					payee = h.merchant("55501", mama)
					if _, err := h.engine.Deposit(context.Background(), Deposit{Account: payee.ID, Amount: c.payee, Reference: "seed-mama"}); err != nil {
						t.Fatal(err)
					}
				default:
					payee = h.wallet(c.payeePhone, c.payee)
				}
				h.sms(alice, c.request)
				code := h.code(alice)
				p := h.pendingOf(alice)
				before := h.count(c.payeePhone)
				if c.ahead {
					h.sms(alice, code)
				} else if out := h.confirmWith(alice, code, nil); !out.OK() {
					t.Fatalf("confirm: %+v", out)
				}

				receipt := h.messageFor(alice, "receipt")
				if receipt.PaymentID != p.ID || !strings.Contains(receipt.Text, c.wantPayer) {
					t.Errorf("receipt = %q, want it to say %q", receipt.Text, c.wantPayer)
				}
				if got := money(h.balance(payer.ID).Posted); !strings.Contains(receipt.Text, "New balance "+got+".") {
					t.Errorf("receipt = %q, but the payer now holds %s", receipt.Text, got)
				}
				if c.wantPayee == "" {
					if n := h.count(c.payeePhone); n != before {
						t.Errorf("%s got %d messages on completion, want none", c.payeePhone, n-before)
					}
				} else {
					notice := h.messageFor(c.payeePhone, "notice")
					if notice.PaymentID != p.ID || !strings.Contains(notice.Text, c.wantPayee) {
						t.Errorf("payee notice = %q, want it to say %q", notice.Text, c.wantPayee)
					}
					if got := money(h.balance(payee.ID).Posted); !strings.Contains(notice.Text, "New balance "+got+".") {
						t.Errorf("payee notice = %q, but the payee now holds %s", notice.Text, got)
					}
				}
				h.assertBalanced()
			})
		}
	})
}

// TestBalanceAfterReadsOnlyWhatTheTransferDoesNotKnow: balanceAfter takes a side's
// balance from the transfer when the ledger returned it, and reads the account
// otherwise (the transfer does not know its balances, or the account is not one of its
// sides).
func TestBalanceAfterReadsOnlyWhatTheTransferDoesNotKnow(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h := newHarness(t)
		a, b := h.wallet(alice, 70000), h.wallet(bob, 3000)
		// Balances no account holds: taken from the transfer, they show no read was made.
		known := ledger.Transfer{ID: "TR1", Debit: a.ID, Credit: b.ID, Amount: 1,
			DebitBalanceAfter: 111, CreditBalanceAfter: 222, BalancesAfterKnown: true}
		unknown := known
		unknown.BalancesAfterKnown = false
		for _, c := range []struct {
			name    string
			tr      ledger.Transfer
			account string
			want    int64
			wantErr error
		}{
			{"debit side", known, a.ID, 111, nil},
			{"credit side", known, b.ID, 222, nil},
			{"debit side, balances unknown", unknown, a.ID, 70000, nil},
			{"credit side, balances unknown", unknown, b.ID, 3000, nil},
			{"neither side", ledger.Transfer{ID: "TR2", Debit: "x", Credit: "y", BalancesAfterKnown: true}, a.ID, 70000, nil},
			{"unknown account", unknown, "ACNOSUCHONE0", 0, ledger.ErrNotFound},
		} {
			t.Run(c.name, func(t *testing.T) {
				got, err := h.engine.BalanceAfter(context.Background(), &c.tr, c.account)
				if !errors.Is(err, c.wantErr) || got != c.want {
					t.Errorf("balanceAfter = %d, %v; want %d, %v", got, err, c.want, c.wantErr)
				}
			})
		}
	})
}
