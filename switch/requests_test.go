package payswitch_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/payswitch/payswitch/internal/pgtest"
	"github.com/payswitch/payswitch/ledger"

	. "github.com/payswitch/payswitch/switch"
)

// Merchants' requests to pay (contract section 10), through the engine's API on a real
// database: the request and its SMS, confirmation by code with the money moving payer
// to merchant at once, the events the merchant's system is told of, NO, expiry, STOP,
// idempotent references and the rate limits.

// requestTo sends merchant's request for amount to msisdn under ref, and fails the test
// on a refusal.
func (h *harness) requestTo(merchant ledger.Account, msisdn string, amount int64, ref string) *Payment {
	h.t.Helper()
	p, err := h.engine.RequestPayment(context.Background(), PaymentRequest{Merchant: merchant.ID, MSISDN: msisdn,
		Amount: amount, Reference: ref})
	if err != nil {
		h.t.Fatalf("request %s: %v", ref, err)
	}
	return p
}

// codeIn reads the one-time code out of the newest message of purpose to msisdn.
func (h *harness) codeIn(msisdn, purpose string) string {
	h.t.Helper()
	ms, err := h.outbox.List(context.Background(), msisdn, 50)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, m := range ms {
		if m.Purpose != purpose {
			continue
		}
		all := codeRun.FindAllStringSubmatch(m.Text, -1)
		if len(all) != 1 {
			h.t.Fatalf("want exactly one 6-digit run in %q, got %d", m.Text, len(all))
		}
		return all[0][2]
	}
	h.t.Fatalf("no %s message to %s", purpose, msisdn)
	return ""
}

// payment is payment id as the API reads it.
func (h *harness) payment(id string) *Payment {
	h.t.Helper()
	p, err := h.engine.Payment(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

// notCode is a well-formed code that is none of codes.
func notCode(codes ...string) string {
	for _, c := range []string{"999999", "999998", "999997"} {
		if !strings.Contains(strings.Join(codes, ","), c) {
			return c
		}
	}
	return "999996"
}

func TestRequestToPayCompletesByCode(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		ctx := context.Background()
		h := newHarness(t)
		w := h.wallet(alice, 100000)
		m := h.merchant("55501", mama)
		p, err := h.engine.RequestPayment(ctx, PaymentRequest{Merchant: m.ID, MSISDN: "0700000001", Amount: 15000,
			Reference: "INV-7", Description: "Order 7"})
		if err != nil {
			t.Fatal(err)
		}
		if p.State != StateRequested || p.Channel != ChannelAPI || p.Type != MerchantPayment || p.PayerMSISDN != alice ||
			p.PayeeAccount != m.ID || !p.ExpiresAt.Equal(p.CreatedAt.Add(10*time.Minute)) || p.Description != "Order 7" {
			t.Fatalf("request %+v", p)
		}
		if b := h.balance(w.ID); b.Held != 0 || b.Available != 100000 {
			t.Fatalf("a request held money: %+v", b)
		}
		msg := h.last(alice)
		if msg.Purpose != "request" || msg.PaymentID != p.ID || !msg.RequestReceipt {
			t.Fatalf("request SMS %+v", msg)
		}
		for _, want := range []string{p.ID, "Mama Mboga (55501)", "KES 150.00", "Order 7", "10 min", "NO to refuse", "Never share"} {
			if !strings.Contains(msg.Text, want) {
				t.Errorf("request SMS %q lacks %q", msg.Text, want)
			}
		}
		code := h.codeIn(alice, "request")

		h.sms(alice, "OK "+code)
		got := h.payment(p.ID)
		if got.State != StateCompleted || got.TransferID == "" {
			t.Fatalf("after the code: %+v", got)
		}
		if b := h.balance(w.ID); b.Posted != 85000 || b.Held != 0 {
			t.Fatalf("payer %+v", b)
		}
		if b := h.balance(m.ID); b.Posted != 15000 {
			t.Fatalf("merchant %+v", b)
		}
		trs, err := h.ledger.TransfersOfPayment(ctx, p.ID)
		if err != nil || len(trs) != 1 || trs[0].ID != got.TransferID || trs[0].Debit != w.ID || trs[0].Credit != m.ID {
			t.Fatalf("transfers %+v %v", trs, err)
		}
		if r := h.last(alice); r.Purpose != "receipt" || !strings.Contains(r.Text, "New balance KES 850.00") {
			t.Fatalf("receipt %+v", r)
		}
		if n := h.last(mama); !strings.Contains(n.Text, p.ID) || !strings.Contains(n.Text, "KES 150.00") {
			t.Fatalf("merchant's notice %q", n.Text)
		}
		evs := h.events.of(p.ID)
		if len(evs) != 1 || evs[0].Type != EventPaymentCompleted || evs[0].Merchant != m.ID || evs[0].Data.State != "completed" ||
			evs[0].Data.Amount != 15000 || evs[0].Data.Description != "Order 7" || evs[0].Data.Reference != "INV-7" {
			t.Fatalf("events %+v", evs)
		}
		// The code works once.
		h.sms(alice, code)
		if txt := h.last(alice).Text; !strings.Contains(txt, "no payment waiting") {
			t.Fatalf("the code again: %q", txt)
		}
		h.assertBalanced()
	})
}

// A number may have a payment of its own and a merchant's request waiting at once; each
// code confirms only what it was issued for, and a guess tries both.
func TestRequestAndOwnPaymentWaitAtOnce(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		ctx := context.Background()
		h := newHarness(t)
		h.cfg.Fraud = Fraud{WrongCodesLock: 5, LockWindow: time.Hour, LockDuration: time.Hour}
		h.restart()
		w := h.wallet(alice, 100000)
		h.merchant("55501", mama)
		shop := h.merchant("55502", "")
		h.sms(alice, "PAY 55501 100")
		own := h.pendingOf(alice)
		ownCode := h.code(alice)
		req := h.requestTo(shop, alice, 20000, "INV-1")
		reqCode := h.codeIn(alice, "request")

		h.sms(alice, notCode(ownCode, reqCode))
		txt := h.last(alice).Text
		if !strings.Contains(txt, "Wrong code for "+own.ID+" and "+req.ID) || !strings.Contains(txt, "2 for "+own.ID) ||
			!strings.Contains(txt, "2 for "+req.ID) {
			t.Fatalf("a guess with two waiting: %q", txt)
		}
		for _, id := range []string{own.ID, req.ID} {
			if evs := h.authEvents(id); evs[len(evs)-1] != "wrong" {
				t.Errorf("%s's history %v: the guess is not on it", id, evs)
			}
		}
		var wrongs int
		if err := h.db.Reader().QueryRowContext(ctx, `SELECT wrong_codes FROM number_locks WHERE msisdn = ?`, alice).Scan(&wrongs); err != nil || wrongs != 1 {
			t.Fatalf("the number's wrong codes %d, %v; want the guess counted once", wrongs, err)
		}

		h.sms(alice, reqCode)
		if got := h.payment(req.ID).State; got != StateCompleted {
			t.Fatalf("request after its code: %s", got)
		}
		if got := h.payment(own.ID).State; got != StatePendingOTP {
			t.Fatalf("own payment after the request's code: %s", got)
		}
		if b := h.balance(w.ID); b.Posted != 80000 || b.Held != 10000 {
			t.Fatalf("payer after the request: %+v", b)
		}
		if b := h.balance(shop.ID); b.Posted != 20000 {
			t.Fatalf("shop %+v", b)
		}
		h.sms(alice, ownCode)
		if got := h.payment(own.ID).State; got != StateCompleted {
			t.Fatalf("own payment after its code: %s", got)
		}
		if b := h.balance(w.ID); b.Posted != 70000 || b.Held != 0 {
			t.Fatalf("payer at the end: %+v", b)
		}
		// Each merchant's system heard of its own payment.
		if got := h.events.types(req.ID); strings.Join(got, ",") != EventPaymentCompleted {
			t.Fatalf("request's events %v", got)
		}
		if evs := h.events.of(own.ID); len(evs) != 1 || evs[0].Merchant == shop.ID {
			t.Fatalf("own payment's events %+v", evs)
		}
		h.assertBalanced()
	})
}

// A USSD session that pushed a request names it: the code is checked against that one
// only, and the payer's own payment keeps its tries.
func TestConfirmNamesTheRequest(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		ctx := context.Background()
		h := newHarness(t)
		h.wallet(alice, 100000)
		h.merchant("55501", mama)
		shop := h.merchant("55502", "")
		h.sms(alice, "PAY 55501 100")
		own := h.pendingOf(alice)
		ownCode := h.code(alice)
		req := h.requestTo(shop, alice, 20000, "INV-1")
		reqCode := h.codeIn(alice, "request")
		out, err := h.engine.Confirm(ctx, ChannelUSSD, alice, req.ID, ownCode)
		if err != nil || out.Problem != ProblemWrongCode || out.Payment.ID != req.ID {
			t.Fatalf("own code for the request: %+v %v", out, err)
		}
		if evs := h.authEvents(own.ID); evs[len(evs)-1] == "wrong" {
			t.Fatalf("own payment lost a try: %v", evs)
		}
		if out, err := h.engine.Confirm(ctx, ChannelUSSD, alice, req.ID, reqCode); err != nil || !out.OK() || out.Payment.ID != req.ID {
			t.Fatalf("the request's code: %+v %v", out, err)
		}
		if got := h.payment(own.ID).State; got != StatePendingOTP {
			t.Fatalf("own payment %s", got)
		}
	})
}

func TestRequestWithoutFundsFails(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h := newHarness(t)
		w := h.wallet(alice, 5000)
		m := h.merchant("55501", mama)
		p := h.requestTo(m, alice, 15000, "INV-9")
		code := h.codeIn(alice, "request")
		h.sms(alice, code)
		got := h.payment(p.ID)
		if got.State != StateFailed || got.Reason != "insufficient funds" {
			t.Fatalf("request %+v", got)
		}
		msg := h.last(alice)
		if msg.Purpose != "failed" || !strings.Contains(msg.Text, "insufficient funds") || !strings.Contains(msg.Text, "KES 50.00 available") {
			t.Fatalf("payer told %+v", msg)
		}
		if h.count(alice) != 3 { // the seed deposit's notice, the request, the failure: no second answer
			t.Fatalf("%d messages to alice", h.count(alice))
		}
		if b := h.balance(w.ID); b.Posted != 5000 || b.Held != 0 {
			t.Fatalf("payer %+v", b)
		}
		if b := h.balance(m.ID); b.Posted != 0 {
			t.Fatalf("merchant %+v", b)
		}
		if evs := h.events.of(p.ID); len(evs) != 1 || evs[0].Type != EventRequestFailed || evs[0].Data.State != "failed" {
			t.Fatalf("events %+v", evs)
		}
		h.sms(alice, code)
		if txt := h.last(alice).Text; !strings.Contains(txt, "no payment waiting") {
			t.Fatalf("the code again: %q", txt)
		}
		h.assertBalanced()
	})
}

func TestDeclineRequest(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		ctx := context.Background()
		h := newHarness(t)
		h.wallet(alice, 100000)
		m := h.merchant("55501", mama)
		p := h.requestTo(m, alice, 15000, "INV-1")
		code := h.codeIn(alice, "request")
		if out, err := h.engine.Decline(ctx, ChannelUSSD, alice, "AAAAAAAAAA"); err != nil || out.Problem != ProblemNoRequest {
			t.Fatalf("declining another request: %+v %v", out, err)
		}
		h.sms(alice, "no")
		got := h.payment(p.ID)
		if got.State != StateDeclined {
			t.Fatalf("after NO: %s", got.State)
		}
		if txt := h.last(alice).Text; !strings.Contains(txt, p.ID+" declined") {
			t.Fatalf("answer %q", txt)
		}
		if evs := h.events.of(p.ID); len(evs) != 1 || evs[0].Type != EventRequestDeclined || evs[0].Data.State != "declined" {
			t.Fatalf("events %+v", evs)
		}
		h.sms(alice, code)
		if txt := h.last(alice).Text; !strings.Contains(txt, "no payment waiting") {
			t.Fatalf("the code of a declined request: %q", txt)
		}
		h.sms(alice, "NO")
		if txt := h.last(alice).Text; txt != DefaultTexts["no_request"] {
			t.Fatalf("NO with nothing waiting: %q", txt)
		}
		// Declined, the number may get another request.
		h.requestTo(m, alice, 15000, "INV-2")
	})
}

// The sweeper expires a request when the test moves the clock past its TTL.
func TestRequestExpiresOnTheEnginesClock(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		h := newHarness(t)
		h.wallet(alice, 100000)
		m := h.merchant("55501", mama)
		p, err := h.engine.RequestPayment(ctx, PaymentRequest{Merchant: m.ID, MSISDN: alice, Amount: 15000, Reference: "INV-1",
			TTL: 2 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		code := h.codeIn(alice, "request")
		done := make(chan error, 1)
		go func() { done <- h.engine.Run(ctx) }()
		defer func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		}()
		h.clock.BlockUntilTimers(1)
		h.clock.Advance(time.Minute)
		h.clock.BlockUntilTimers(1)
		if got := h.payment(p.ID).State; got != StateRequested {
			t.Fatalf("a minute in: %s", got)
		}
		h.clock.Advance(time.Minute) // the request's TTL
		h.clock.BlockUntilTimers(1)
		if got := h.payment(p.ID).State; got != StateExpired {
			t.Fatalf("after its TTL: %s", got)
		}
		if msg := h.last(alice); msg.Purpose != "expired" || !strings.Contains(msg.Text, p.ID) || !strings.Contains(msg.Text, "Nothing was paid") {
			t.Fatalf("payer told %+v", msg)
		}
		if got := h.events.types(p.ID); strings.Join(got, ",") != EventRequestExpired {
			t.Fatalf("events %v", got)
		}
		h.sms(alice, code)
		if txt := h.last(alice).Text; !strings.Contains(txt, "no payment waiting") {
			t.Fatalf("the code after expiry: %q", txt)
		}
	})
}

// A request's code lives as long as the request, not otp.ttl.
func TestRequestCodeOutlivesOTPTTL(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h := newHarness(t)
		h.wallet(alice, 100000)
		m := h.merchant("55501", mama)
		p, err := h.engine.RequestPayment(context.Background(), PaymentRequest{Merchant: m.ID, MSISDN: alice, Amount: 15000,
			Reference: "INV-1", TTL: 3 * time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if txt := h.last(alice).Text; !strings.Contains(txt, "within 3 h to pay") {
			t.Fatalf("request SMS %q", txt)
		}
		h.clock.Advance(2 * time.Hour)
		h.sms(alice, h.codeIn(alice, "request"))
		if got := h.payment(p.ID).State; got != StateCompleted {
			t.Fatalf("two hours in: %s", got)
		}
	})
}

func TestRequestReferenceIsIdempotent(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		ctx := context.Background()
		h := newHarness(t)
		h.wallet(alice, 100000)
		h.wallet(bob, 100000)
		m := h.merchant("55501", mama)
		other := h.merchant("55502", "")
		first := h.requestTo(m, alice, 15000, "INV-7")
		before := h.count(alice)
		again := h.requestTo(m, "0700000001", 15000, "INV-7")
		if again.ID != first.ID || h.count(alice) != before {
			t.Fatalf("again: %s (first %s), %d messages (was %d)", again.ID, first.ID, h.count(alice), before)
		}
		_, err := h.engine.RequestPayment(ctx, PaymentRequest{Merchant: m.ID, MSISDN: alice, Amount: 20000, Reference: "INV-7"})
		if !errors.Is(err, ErrConflict) {
			t.Fatalf("the reference for another amount: %v, want ErrConflict", err)
		}
		// The reference is the merchant's own: another merchant's INV-7 is another request.
		if p := h.requestTo(other, bob, 15000, "INV-7"); p.ID == first.ID {
			t.Fatal("another merchant's reference returned the first merchant's request")
		}
		// Even once it has ended, the reference names that request.
		h.sms(alice, "NO")
		if p := h.requestTo(m, alice, 15000, "INV-7"); p.ID != first.ID || p.State != StateDeclined {
			t.Fatalf("after NO: %+v", p)
		}
	})
}

func TestStopRefusesAMerchantsRequests(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		ctx := context.Background()
		h := newHarness(t)
		h.wallet(alice, 100000)
		m := h.merchant("55501", mama)
		other := h.merchant("55502", "")
		waiting := h.requestTo(m, alice, 15000, "INV-1")
		code := h.codeIn(alice, "request")

		h.sms(alice, "stop 55501")
		if txt := h.last(alice).Text; !strings.Contains(txt, "Mama Mboga (55501) can no longer send you requests") ||
			!strings.Contains(txt, "START 55501") {
			t.Fatalf("STOP answered %q", txt)
		}
		h.sms(alice, "STOP 55501") // again: the same answer, nothing more
		var rows int
		if err := h.db.Reader().QueryRowContext(ctx, `SELECT count(*) FROM request_stops`).Scan(&rows); err != nil || rows != 1 {
			t.Fatalf("%d stops, %v", rows, err)
		}
		// The request already waiting is not affected.
		h.sms(alice, code)
		if got := h.payment(waiting.ID).State; got != StateCompleted {
			t.Fatalf("the request waiting before STOP: %s", got)
		}
		if _, err := h.engine.RequestPayment(ctx, PaymentRequest{Merchant: m.ID, MSISDN: alice, Amount: 15000, Reference: "INV-2"}); !errors.Is(err, ErrPayerStopped) {
			t.Fatalf("after STOP: %v, want ErrPayerStopped", err)
		}
		h.requestTo(other, alice, 100, "X-1") // other merchants still may
		h.sms(alice, "NO")
		h.sms(alice, "STOP 99999")
		if txt := h.last(alice).Text; !strings.Contains(txt, "no merchant 99999") {
			t.Fatalf("STOP of an unknown merchant: %q", txt)
		}
		h.sms(alice, "START 55501")
		if txt := h.last(alice).Text; !strings.Contains(txt, "can send you requests to pay again") {
			t.Fatalf("START answered %q", txt)
		}
		h.requestTo(m, alice, 15000, "INV-3")
		h.sms(alice, "STOP")
		if txt := h.last(alice).Text; !strings.Contains(txt, "STOP <till>") {
			t.Fatalf("STOP without a till: %q", txt)
		}
	})
}

// The rate limits count in the database: a restart forgets nothing, the next window
// starts afresh.
func TestRequestRateLimitsHoldAcrossRestarts(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		ctx := context.Background()
		h := newHarness(t)
		h.cfg.Requests = RequestLimits{PerNumberPerDay: 2, PerMerchantPerMinute: 3}
		h.restart()
		for _, n := range []string{alice, bob, "254700000003", "254700000004"} {
			h.wallet(n, 100000)
		}
		m := h.merchant("55501", mama)
		other := h.merchant("55502", "")
		h.requestTo(m, alice, 1000, "A-1")
		h.sms(alice, "NO")
		h.requestTo(other, alice, 1000, "B-1")
		h.sms(alice, "NO")
		h.restart()
		if _, err := h.engine.RequestPayment(ctx, PaymentRequest{Merchant: m.ID, MSISDN: alice, Amount: 1000, Reference: "A-2"}); !errors.Is(err, ErrRateLimited) {
			t.Fatalf("a number's third request of the day: %v, want ErrRateLimited", err)
		}
		// The merchant's minute: A-1 and two more; the fourth is refused.
		h.requestTo(m, bob, 1000, "A-3")
		h.requestTo(m, "254700000003", 1000, "A-4")
		if _, err := h.engine.RequestPayment(ctx, PaymentRequest{Merchant: m.ID, MSISDN: "254700000004", Amount: 1000, Reference: "A-5"}); !errors.Is(err, ErrRateLimited) {
			t.Fatalf("a merchant's fourth request of the minute: %v, want ErrRateLimited", err)
		}
		h.clock.Advance(time.Minute)
		h.requestTo(m, "254700000004", 1000, "A-5")
		h.clock.Advance(24 * time.Hour)
		h.requestTo(m, alice, 1000, "A-6")
	})
}

func TestRequestRefusals(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		ctx := context.Background()
		h := newHarness(t)
		h.wallet(alice, 100000)
		frozenPayer := h.wallet(bob, 100000)
		m := h.merchant("55501", mama)
		frozenShop := h.merchant("55502", "")
		for _, id := range []string{frozenPayer.ID, frozenShop.ID} {
			if _, err := h.engine.SetAccountStatus(ctx, AccountStatusChange{Account: id, Status: ledger.Frozen, Reason: "test", Actor: "ops"}); err != nil {
				t.Fatal(err)
			}
		}
		ok := PaymentRequest{Merchant: m.ID, MSISDN: alice, Amount: 15000, Reference: "R-1"}
		for _, c := range []struct {
			name string
			edit func(r *PaymentRequest)
			want error
			msg  string
		}{
			{"no such number", func(r *PaymentRequest) { r.MSISDN = "254700000099" }, ErrInvalid, "has no wallet"},
			{"not a number", func(r *PaymentRequest) { r.MSISDN = "alice" }, ErrInvalid, "msisdn"},
			{"frozen payer", func(r *PaymentRequest) { r.MSISDN = bob }, ErrInvalid, "frozen"},
			{"no such merchant", func(r *PaymentRequest) { r.Merchant = "AC-NOPE" }, ErrInvalid, "no merchant"},
			{"a wallet is no merchant", func(r *PaymentRequest) { r.Merchant = frozenPayer.ID }, ErrInvalid, "no merchant"},
			{"frozen merchant", func(r *PaymentRequest) { r.Merchant = frozenShop.ID }, ErrInvalid, "frozen"},
			{"amount and items", func(r *PaymentRequest) { r.Items = []ItemRequest{{Product: "12", Quantity: 1}} }, ErrInvalid, "not both"},
			{"ttl too short", func(r *PaymentRequest) { r.TTL = 30 * time.Second }, ErrInvalid, "ttl"},
			{"ttl too long", func(r *PaymentRequest) { r.TTL = 25 * time.Hour }, ErrInvalid, "ttl"},
			{"description with a line break", func(r *PaymentRequest) { r.Description = "a\nb" }, ErrInvalid, "description"},
			{"airtime by a merchant", func(r *PaymentRequest) { r.Type, r.Merchant = AirtimePayment, "" }, ErrInvalid, "operator"},
			{"unknown product", func(r *PaymentRequest) { r.Amount, r.Items = 0, []ItemRequest{{Product: "12", Quantity: 1}} }, ErrUnknownProduct, "12"},
		} {
			t.Run(c.name, func(t *testing.T) {
				r := ok
				c.edit(&r)
				_, err := h.engine.RequestPayment(ctx, r)
				if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
					t.Fatalf("%v, want %v naming %q", err, c.want, c.msg)
				}
			})
		}
		if n := h.count(alice); n != 1 { // the seed deposit's notice only
			t.Fatalf("%d messages to alice after refusals", n)
		}
		first := h.requestTo(m, alice, 15000, "R-1")
		_, err := h.engine.RequestPayment(ctx, PaymentRequest{Merchant: m.ID, MSISDN: alice, Amount: 100, Reference: "R-2"})
		if !errors.Is(err, ErrPayerBusy) || !strings.Contains(err.Error(), first.ID) {
			t.Fatalf("a second request while one waits: %v, want ErrPayerBusy", err)
		}
	})
}

// An overdue request the sweeper has not reached does not make the number busy.
func TestOverdueRequestMakesWayForTheNext(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h := newHarness(t)
		h.wallet(alice, 100000)
		m := h.merchant("55501", mama)
		first := h.requestTo(m, alice, 15000, "R-1")
		h.clock.Advance(10 * time.Minute)
		second := h.requestTo(m, alice, 15000, "R-2")
		if got := h.payment(first.ID).State; got != StateExpired || second.State != StateRequested {
			t.Fatalf("first %s, second %s", got, second.State)
		}
		if got := h.events.types(first.ID); strings.Join(got, ",") != EventRequestExpired {
			t.Fatalf("first's events %v", got)
		}
	})
}

func TestAirtimeReminderTopsUpOnConfirmation(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		ctx := context.Background()
		h, fc := newAirtimeHarness(t, AirtimeSuccess)
		w := h.wallet(alice, 100000)
		if _, err := h.engine.RequestPayment(ctx, PaymentRequest{Type: AirtimePayment, MSISDN: alice, Amount: 5000, Reference: "REM-1"}); err == nil {
			t.Fatal("an airtime reminder from a merchant's key was sent")
		}
		p, err := h.engine.RequestPayment(ctx, PaymentRequest{Type: AirtimePayment, MSISDN: alice, Amount: 5000,
			Reference: "REM-1", Operator: true})
		if err != nil {
			t.Fatal(err)
		}
		if txt := h.last(alice).Text; !strings.Contains(txt, "buy KES 50.00 of airtime for this number") {
			t.Fatalf("reminder SMS %q", txt)
		}
		h.sms(alice, h.codeIn(alice, "request"))
		if got := h.state(p.ID); got != StateTopupPending {
			t.Fatalf("after the code: %s", got)
		}
		if b := h.balance(w.ID); b.Posted != 95000 || b.Held != 0 {
			t.Fatalf("payer %+v", b)
		}
		h.resolve()
		if got := h.state(p.ID); got != StateCompleted || fc.credits != 1 {
			t.Fatalf("state %s, credits %d", got, fc.credits)
		}
		if evs := h.events.of(p.ID); len(evs) != 0 {
			t.Fatalf("an airtime reminder has no merchant to tell: %+v", evs)
		}
		h.assertBalanced()
	})
}

func TestReversalOfAMerchantPaymentIsAnEvent(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h := newHarness(t)
		h.wallet(alice, 100000)
		h.merchant("55501", mama)
		h.sms(alice, "PAY 55501 150")
		p := h.pendingOf(alice)
		h.sms(alice, h.code(alice))
		if _, err := h.engine.Reverse(context.Background(), p.ID, Reversal{Reason: "duplicate", Reference: "RV-1"}); err != nil {
			t.Fatal(err)
		}
		evs := h.events.of(p.ID)
		if len(evs) != 2 || evs[0].Type != EventPaymentCompleted || evs[1].Type != EventPaymentReversed ||
			evs[1].Data.State != "reversed" || evs[1].Data.ReversalRef != "RV-1" {
			t.Fatalf("events %+v", evs)
		}
		// Transfers have no merchant: no events.
		h.wallet(bob, 0)
		h.sms(alice, "SEND 0700000002 10")
		q := h.pendingOf(alice)
		h.sms(alice, h.code(alice))
		if evs := h.events.of(q.ID); len(evs) != 0 {
			t.Fatalf("a transfer's events %+v", evs)
		}
	})
}

// The code is the only run of exactly otp.digits digits in a request's SMS, whatever
// the merchant writes in its description or names its products.
func TestRequestSMSCarriesOneCode(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h := newHarness(t)
		h.wallet(alice, 100000)
		m := h.merchant("555012", mama)
		h.catalog.add(m.ID, Product{Code: "123456", Name: "Box 654321", Price: 100})
		p, err := h.engine.RequestPayment(context.Background(), PaymentRequest{Merchant: m.ID, MSISDN: alice, Reference: "INV-482913",
			Description: "Invoice 482913", Items: []ItemRequest{{Product: "123456", Quantity: 2}}})
		if err != nil {
			t.Fatal(err)
		}
		txt := h.last(alice).Text
		if !strings.Contains(txt, "Invoice 482 913: 2 x Box 654 321") || !strings.Contains(txt, "(555 012)") || !strings.Contains(txt, p.ID) {
			t.Fatalf("request SMS %q", txt)
		}
		h.sms(alice, h.codeIn(alice, "request")) // codeIn finds exactly one 6-digit run
		if got := h.payment(p.ID).State; got != StateCompleted {
			t.Fatalf("after the code: %s", got)
		}
	})
}
