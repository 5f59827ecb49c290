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

// The tests here check that what the engine works out before a transaction (a request's
// draft, a confirmation's code ahead (see ahead), both read from the reader pool) never decides what
// changed by the time the transaction runs.

// requestWith runs r's transaction with a draft made earlier.
func (h *harness) requestWith(r Request, d *Draft) Outcome {
	h.t.Helper()
	out, err := h.engine.RequestDrafted(context.Background(), r, d)
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

// confirmWith runs a confirmation's transaction with a code worked out earlier.
func (h *harness) confirmWith(msisdn, code string, g *CodeAhead) Outcome {
	h.t.Helper()
	out, err := h.engine.ConfirmWithAhead(context.Background(), ChannelUSSD, msisdn, code, g)
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

func TestRequestChecksWhatChangedSinceItsDraft(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		ctx := context.Background()
		pay := Request{Channel: ChannelUSSD, Type: MerchantPayment, Payer: alice, Merchant: "55501", Amount: 15000}
		cases := []struct {
			name    string
			between func(h *harness, payer, merchant ledger.Account)
			want    Problem
			text    string
		}{
			{"payer frozen", func(h *harness, payer, _ ledger.Account) {
				if err := h.ledger.SetStatus(ctx, payer.ID, ledger.Frozen); err != nil {
					t.Fatal(err)
				}
			}, ProblemAccountInactive, "not active"},
			{"merchant frozen", func(h *harness, _, merchant ledger.Account) {
				if err := h.ledger.SetStatus(ctx, merchant.ID, ledger.Frozen); err != nil {
					t.Fatal(err)
				}
			}, ProblemPayeeInactive, "Mama Mboga (55501) cannot receive"},
			{"money spent", func(h *harness, payer, merchant ledger.Account) {
				if _, err := h.ledger.Transfer(ctx, ledger.TransferRequest{Key: "spend", Debit: payer.ID,
					Credit: merchant.ID, Amount: 90000, Kind: "test"}); err != nil {
					t.Fatal(err)
				}
			}, ProblemInsufficientFunds, "KES 100.00 available"},
			{"another payment started", func(h *harness, _, _ ledger.Account) {
				if out, err := h.engine.Request(ctx, pay); err != nil || !out.OK() {
					t.Fatalf("the other request: %+v %v", out, err)
				}
			}, ProblemPendingExists, "is waiting for your code"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				h := newHarness(t)
				payer := h.wallet(alice, 100000)
				merchant := h.merchant("55501", mama)
				d, err := h.engine.DraftRequest(ctx, pay)
				if err != nil {
					t.Fatal(err)
				}
				tc.between(h, payer, merchant)
				held := h.balance(payer.ID).Held
				out := h.requestWith(pay, d)
				if out.Problem != tc.want || !strings.Contains(out.Text, tc.text) {
					t.Fatalf("outcome %q %q, want %q with %q", out.Problem, out.Text, tc.want, tc.text)
				}
				if h.balance(payer.ID).Held != held {
					t.Fatal("a refused request held money")
				}
				if _, err := h.engine.Payment(ctx, d.PaymentID()); !errors.Is(err, ErrNotFound) {
					t.Fatalf("the refused payment exists: %v", err)
				}
				h.assertBalanced()
			})
		}
	})
}

// The payer's account is kept in memory after its first request, and yet a freeze or
// a closure is honoured by the very next request, and an unfreeze too: the status is
// read in the write.
func TestKeptPayerStatusIsReadInTheWrite(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		ctx := context.Background()
		h := newHarness(t)
		payer := h.wallet(alice, 100000)
		empty := h.wallet(bob, 0)
		h.merchant("55501", mama)
		request := func(msisdn string, amount int64) Outcome {
			t.Helper()
			out, err := h.engine.Request(ctx, Request{Channel: ChannelUSSD, Type: MerchantPayment, Payer: msisdn,
				Merchant: "55501", Amount: amount})
			if err != nil {
				t.Fatal(err)
			}
			return out
		}
		setStatus := func(id string, s ledger.Status) {
			t.Helper()
			if err := h.ledger.SetStatus(ctx, id, s); err != nil {
				t.Fatal(err)
			}
		}
		// First requests, refused for their amount, keep both accounts.
		for _, msisdn := range []string{alice, bob} {
			if out := request(msisdn, 1); out.Problem != ProblemBelowMin {
				t.Fatalf("first request of %s: %+v", msisdn, out)
			}
		}
		setStatus(payer.ID, ledger.Frozen)
		setStatus(empty.ID, ledger.Closed)
		for _, msisdn := range []string{alice, bob} {
			if out := request(msisdn, 15000); out.Problem != ProblemAccountInactive {
				t.Fatalf("%s after the change: %+v", msisdn, out)
			}
		}
		if h.balance(payer.ID).Held != 0 {
			t.Fatal("the frozen payer's money was held")
		}
		setStatus(payer.ID, ledger.Active)
		if out := request(alice, 15000); !out.OK() {
			t.Fatalf("after the unfreeze: %+v", out)
		}
		if held := h.balance(payer.ID).Held; held != 15000 {
			t.Fatalf("held %d, want 15000", held)
		}
		h.assertBalanced()
	})
}

func TestRequestDraftedForAnUnknownAccountIsRefused(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		ctx := context.Background()
		cases := []struct {
			name string
			r    Request
			want Problem
		}{
			{"no such payer", Request{Type: MerchantPayment, Payer: bob, Merchant: "55501", Amount: 100}, ProblemNoAccount},
			{"payer is a merchant", Request{Type: MerchantPayment, Payer: mama, Merchant: "55501", Amount: 100}, ProblemNoAccount},
			{"no such merchant", Request{Type: MerchantPayment, Payer: alice, Merchant: "55599", Amount: 100}, ProblemUnknownMerchant},
			{"no such recipient", Request{Type: TransferPayment, Payer: alice, Recipient: bob, Amount: 100}, ProblemUnknownRecipient},
			{"to oneself", Request{Type: TransferPayment, Payer: alice, Recipient: "0700000001", Amount: 100}, ProblemSelfPayment},
			{"the amount is refused before the payee", Request{Type: MerchantPayment, Payer: alice, Merchant: "55599", Amount: 1}, ProblemBelowMin},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				h := newHarness(t)
				h.wallet(alice, 100000)
				h.merchant("55501", mama)
				tc.r.Channel = ChannelUSSD
				out, err := h.engine.Request(ctx, tc.r)
				if err != nil || out.Problem != tc.want {
					t.Fatalf("got %q %v, want %q", out.Problem, err, tc.want)
				}
			})
		}
		h := newHarness(t)
		h.wallet(alice, 100000)
		if _, err := h.engine.Request(ctx, Request{Channel: ChannelUSSD, Type: "bogus", Payer: alice, Amount: 100}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("unknown payment type: %v, want ErrInvalid", err)
		}
	})
}

// An overdue payment expired by a new request gives its amount back to the day before the
// new request is measured against the daily limit.
func TestOverduePaymentFreesTheDailyLimitForTheNextRequest(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h := newHarness(t)
		h.cfg.DailyMax = 50000
		h.restart()
		w := h.wallet(alice, 1000000)
		h.merchant("55501", mama)
		h.sms(alice, "PAY 55501 400")
		first := h.pendingOf(alice)
		h.clock.Advance(6 * time.Minute) // overdue, and no sweep has run
		h.sms(alice, "PAY 55501 300")
		p := h.pendingOf(alice)
		if p == nil || p.ID == first.ID || p.Amount != 30000 {
			t.Fatalf("pending %+v after %q", p, h.last(alice).Text)
		}
		if got, _ := h.engine.Payment(context.Background(), first.ID); got.State != StateExpired {
			t.Fatalf("overdue payment is %s", got.State)
		}
		if b := h.balance(w.ID); b.Held != 30000 {
			t.Fatalf("held %d, want only the new payment's", b.Held)
		}
	})
}

func TestConfirmChecksWhatChangedSinceItsGuess(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		ctx := context.Background()

		t.Run("resent code moved the deadline", func(t *testing.T) {
			h := newHarness(t)
			w := h.wallet(alice, 100000)
			h.merchant("55501", "")
			h.sms(alice, "PAY 55501 150")
			old := h.code(alice)
			h.clock.Advance(time.Minute)
			g := h.engine.ConfirmAhead(ctx, alice, old)
			h.sms(alice, "RESEND") // deadline now 6 minutes after the request
			fresh := h.code(alice)
			h.clock.Advance(4*time.Minute + 30*time.Second) // past the old deadline only
			if fresh != old {
				if out := h.confirmWith(alice, old, g); out.Problem != ProblemWrongCode {
					t.Fatalf("old code after a resend: %q %q, want wrong_code", out.Problem, out.Text)
				}
			}
			if out := h.confirmWith(alice, fresh, h.engine.ConfirmAhead(ctx, alice, fresh)); !out.OK() {
				t.Fatalf("fresh code: %q %q", out.Problem, out.Text)
			}
			if b := h.balance(w.ID); b.Posted != 85000 || b.Held != 0 {
				t.Fatalf("balance %+v", b)
			}
		})

		t.Run("another payment waits now", func(t *testing.T) {
			h := newHarness(t)
			w := h.wallet(alice, 100000)
			m := h.merchant("55501", mama)
			h.sms(alice, "PAY 55501 150")
			codeA := h.code(alice)
			g := h.engine.ConfirmAhead(ctx, alice, codeA)
			h.sms(alice, "CANCEL")
			h.sms(alice, "PAY 55501 200")
			codeB := h.code(alice)
			b := h.pendingOf(alice)
			if codeA != codeB {
				if out := h.confirmWith(alice, codeA, g); out.Problem != ProblemWrongCode || out.Payment.ID != b.ID {
					t.Fatalf("A's code on B: %q %+v", out.Problem, out.Payment)
				}
			}
			out := h.confirmWith(alice, codeB, g)
			if !out.OK() || out.Payment.ID != b.ID || !strings.Contains(out.Text, "KES 200.00") ||
				!strings.Contains(out.Text, "New balance KES 800.00") {
				t.Fatalf("B's code with A's guess: %q %q", out.Problem, out.Text)
			}
			if got := h.balance(w.ID); got.Posted != 80000 || got.Held != 0 {
				t.Fatalf("payer %+v", got)
			}
			if notice := h.last(mama).Text; !strings.Contains(notice, b.ID) || !strings.Contains(notice, "New balance KES 200.00") {
				t.Fatalf("merchant notice %q", notice)
			}
			// The payment records the transfer that moved its money, for reversals.
			p, err := h.engine.Payment(ctx, b.ID)
			if err != nil {
				t.Fatal(err)
			}
			trs, err := h.ledger.TransfersOfPayment(ctx, b.ID)
			if err != nil || len(trs) != 1 || p.TransferID != trs[0].ID || trs[0].Credit != m.ID {
				t.Fatalf("payment transfer %q, ledger %+v %v", p.TransferID, trs, err)
			}
		})

		t.Run("cancelled meanwhile", func(t *testing.T) {
			h := newHarness(t)
			h.wallet(alice, 100000)
			h.merchant("55501", mama)
			h.sms(alice, "PAY 55501 150")
			code := h.code(alice)
			g := h.engine.ConfirmAhead(ctx, alice, code)
			h.sms(alice, "CANCEL")
			if out := h.confirmWith(alice, code, g); out.Problem != ProblemNoPending {
				t.Fatalf("after cancel: %q", out.Problem)
			}
		})
	})
}

// authEvents are the auth history's events for paymentID, in order.
func (h *harness) authEvents(paymentID string) []string {
	h.t.Helper()
	var evs []string
	err := otp.Events(context.Background(), h.db.Reader(), func(e otp.Event) error {
		if e.PaymentID == paymentID {
			evs = append(evs, e.Event)
		}
		return nil
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return evs
}

func TestRecordCodeDeliveryTxCommitsWithTheCaller(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		ctx := context.Background()
		h := newHarness(t)
		h.cfg.VoiceNumber = "254711000000"
		h.restart()
		h.wallet(alice, 100000)
		h.merchant("55501", "")
		h.sms(alice, "PAY 55501 150")
		p := h.pendingOf(alice)

		// A caller whose own part fails takes the engine's part down with it.
		boom := errors.New("caller failed")
		err := h.db.Write(ctx, func(tx store.Tx) error {
			if _, err := h.engine.RecordCodeDeliveryTx(ctx, tx, p.ID, alice, true, "DELIVRD"); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatal(err)
		}
		if evs := h.authEvents(p.ID); strings.Join(evs, ",") != "issued" {
			t.Fatalf("after a failed caller: %v", evs)
		}

		// Delivered: one event, nothing to wake.
		select {
		case <-h.outbox.Wait(): // the code SMS's
		default:
		}
		var after func()
		if err := h.db.Write(ctx, func(tx store.Tx) (err error) {
			after, err = h.engine.RecordCodeDeliveryTx(ctx, tx, p.ID, alice, true, "DELIVRD")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		after()
		select {
		case <-h.outbox.Wait():
			t.Fatal("the outbox was woken for nothing to send")
		default:
		}

		// Undeliverable with voice on: a new code is offered by a call, and the outbox wakes
		// once the caller's Write is durable.
		if err := h.db.Write(ctx, func(tx store.Tx) (err error) {
			after, err = h.engine.RecordCodeDeliveryTx(ctx, tx, p.ID, alice, false, "UNDELIV")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		after()
		select {
		case <-h.outbox.Wait():
		default:
			t.Fatal("the outbox was not woken for the call")
		}
		if evs := h.authEvents(p.ID); strings.Join(evs, ",") != "issued,delivered,delivery_failed,resent" {
			t.Fatalf("auth events %v", evs)
		}
		if m := h.last(alice); m.Kind != "call" || m.Purpose != "payer_confirm" || len(m.Text) != 6 {
			t.Fatalf("newest message to the payer: %+v", m)
		}

		// The method of its own still works, and records each receipt.
		if err := h.engine.RecordCodeDelivery(ctx, p.ID, alice, true, "DELIVRD"); err != nil {
			t.Fatal(err)
		}
		if evs := h.authEvents(p.ID); evs[len(evs)-1] != "delivered" {
			t.Fatalf("auth events %v", evs)
		}
	})
}
