package payswitch_test

import (
	"bytes"
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payswitch/payswitch/internal/pgtest"
	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/outbox"

	. "github.com/payswitch/payswitch/switch"
)

func TestPayMerchantWithWrongThenRightCode(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h := newHarness(t)
		w := h.wallet(alice, 100000)
		m := h.merchant("55501", mama)

		h.sms(alice, "PAY 55501 150")
		otpMsg := h.last(alice)
		for _, want := range []string{"KES 150.00", "Mama Mboga (55501)", "5 min", "Never share"} {
			if !strings.Contains(otpMsg.Text, want) {
				t.Fatalf("OTP SMS %q lacks %q", otpMsg.Text, want)
			}
		}
		code := h.code(alice)
		p := h.pendingOf(alice)
		if p == nil || !strings.Contains(otpMsg.Text, p.ID) {
			t.Fatalf("pending payment %+v not named in %q", p, otpMsg.Text)
		}
		if b := h.balance(w.ID); b.Posted != 100000 || b.Held != 15000 || b.Available != 85000 {
			t.Fatalf("after request balance = %+v", b)
		}

		h.sms(alice, wrongCode(code))
		if txt := h.last(alice).Text; !strings.Contains(txt, "Wrong code") || !strings.Contains(txt, "2 tries left") {
			t.Fatalf("wrong code reply = %q", txt)
		}
		h.sms(alice, "ok "+code)
		receipt := h.last(alice)
		if receipt.Purpose != "receipt" || !strings.Contains(receipt.Text, p.ID) || !strings.Contains(receipt.Text, "KES 150.00") ||
			!strings.Contains(receipt.Text, "Mama Mboga") || !strings.Contains(receipt.Text, "KES 850.00") {
			t.Fatalf("receipt = %+v", receipt)
		}
		notice := h.last(mama)
		if !strings.Contains(notice.Text, p.ID) || !strings.Contains(notice.Text, "2547****001") || !strings.Contains(notice.Text, "KES 150.00") {
			t.Fatalf("merchant notice = %q", notice.Text)
		}
		if b := h.balance(w.ID); b.Posted != 85000 || b.Held != 0 {
			t.Fatalf("payer balance = %+v", b)
		}
		if b := h.balance(m.ID); b.Posted != 15000 {
			t.Fatalf("merchant balance = %+v", b)
		}
		got, err := h.engine.Payment(context.Background(), p.ID)
		if err != nil || got.State != StateCompleted {
			t.Fatalf("payment = %+v, %v", got, err)
		}
		// The code works once.
		h.sms(alice, code)
		if txt := h.last(alice).Text; !strings.Contains(txt, "no payment waiting") {
			t.Fatalf("reused code reply = %q", txt)
		}
		h.assertBalanced()
	})
}

func TestSendMoney(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h := newHarness(t)
		a := h.wallet(alice, 100000)
		b := h.wallet(bob, 0)
		h.sms(alice, "SEND 0700000002 200.50")
		h.sms(alice, h.code(alice))
		if got := h.balance(a.ID).Posted; got != 100000-20050 {
			t.Fatalf("alice = %d", got)
		}
		if got := h.balance(b.ID).Posted; got != 20050 {
			t.Fatalf("bob = %d", got)
		}
		if txt := h.last(bob).Text; !strings.Contains(txt, "KES 200.50") || !strings.Contains(txt, "2547****001") {
			t.Fatalf("bob's notice = %q", txt)
		}
		h.assertBalanced()
	})
}

func TestRefusalsMoveNoMoney(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		cases := []struct {
			name, text, want string
		}{
			{"insufficient funds", "PAY 55501 5000", "Insufficient funds"},
			{"unknown merchant", "PAY 99999 10", "no merchant 99999"},
			{"unknown recipient", "SEND 0799999999 10", "has no account"},
			{"to self", "SEND 0700000001 10", "yourself"},
			{"below minimum", "PAY 55501 0.50", "smallest payment"},
			{"above maximum", "PAY 55501 200000", "largest payment"},
			{"bad amount", "PAY 55501 12k", "Invalid amount"},
			{"unclear amount", "PAY 55501 1.234", "Amount not clear"},
			{"spaced amount", "PAY 55501 15 000", "no spaces in amounts"},
			{"spaced send", "SEND 0700000002 15 000", "No spaces"},
			{"garbage", "hello?", "PAY <till>"},
			{"no pending", "123456", "no payment waiting"},
			{"cancel nothing", "CANCEL", "no payment waiting"},
			{"airtime not yet", "TOPUP 50", "not available"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				h := newHarness(t)
				w := h.wallet(alice, 100000)
				h.merchant("55501", mama)
				before := h.count(alice)
				h.sms(alice, c.text)
				if h.count(alice) != before+1 {
					t.Fatalf("want exactly one reply")
				}
				if txt := h.last(alice).Text; !strings.Contains(txt, c.want) {
					t.Fatalf("reply %q lacks %q", txt, c.want)
				}
				if b := h.balance(w.ID); b.Posted != 100000 || b.Held != 0 {
					t.Fatalf("balance moved: %+v", b)
				}
				if h.pendingOf(alice) != nil {
					t.Fatal("a payment is pending")
				}
			})
		}
	})
}

func TestNoAccountGetsAnAnswer(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h := newHarness(t)
		h.merchant("55501", mama)
		h.sms("254711111111", "PAY 55501 10")
		if txt := h.last("254711111111").Text; !strings.Contains(txt, "no payswitch account") {
			t.Fatalf("reply = %q", txt)
		}
	})
}

func TestThreeWrongCodesFailAndRelease(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h := newHarness(t)
		w := h.wallet(alice, 100000)
		h.merchant("55501", mama)
		h.sms(alice, "PAY 55501 150")
		code := h.code(alice)
		p := h.pendingOf(alice)
		h.sms(alice, wrongCode(code))
		h.sms(alice, wrongCode(code))
		h.sms(alice, wrongCode(code))
		if txt := h.last(alice).Text; !strings.Contains(txt, "too many wrong codes") {
			t.Fatalf("reply = %q", txt)
		}
		got, _ := h.engine.Payment(context.Background(), p.ID)
		if got.State != StateFailed {
			t.Fatalf("state = %s", got.State)
		}
		if b := h.balance(w.ID); b.Held != 0 || b.Posted != 100000 {
			t.Fatalf("balance = %+v", b)
		}
		h.sms(alice, code) // the right code is dead now
		if h.balance(w.ID).Posted != 100000 {
			t.Fatal("dead code moved money")
		}
	})
}

func TestExpiryReleasesHold(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h := newHarness(t)
		w := h.wallet(alice, 100000)
		h.merchant("55501", mama)
		h.sms(alice, "PAY 55501 150")
		code := h.code(alice)
		p := h.pendingOf(alice)

		h.clock.Advance(4 * time.Minute)
		if _, err := h.engine.ExpireDue(context.Background()); err != nil {
			t.Fatal(err)
		}
		if h.pendingOf(alice) == nil {
			t.Fatal("expired early")
		}
		h.clock.Advance(time.Minute + time.Second)
		if _, err := h.engine.ExpireDue(context.Background()); err != nil {
			t.Fatal(err)
		}
		got, _ := h.engine.Payment(context.Background(), p.ID)
		if got.State != StateExpired {
			t.Fatalf("state = %s", got.State)
		}
		if !strings.Contains(h.last(alice).Text, "expired") {
			t.Fatalf("no expiry SMS: %q", h.last(alice).Text)
		}
		if b := h.balance(w.ID); b.Held != 0 {
			t.Fatalf("hold kept: %+v", b)
		}
		h.sms(alice, code)
		if h.balance(w.ID).Posted != 100000 {
			t.Fatal("expired code moved money")
		}
	})
}

func TestCodeFromAnotherNumberDoesNothing(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h := newHarness(t)
		a := h.wallet(alice, 100000)
		h.wallet(bob, 100000)
		h.merchant("55501", mama)
		h.sms(alice, "PAY 55501 150")
		code := h.code(alice)
		h.sms(bob, code)
		if txt := h.last(bob).Text; !strings.Contains(txt, "no payment waiting") {
			t.Fatalf("bob's reply = %q", txt)
		}
		if b := h.balance(a.ID); b.Held != 15000 || b.Posted != 100000 {
			t.Fatalf("alice's balance = %+v", b)
		}
		h.sms(alice, code)
		if h.balance(a.ID).Posted != 85000 {
			t.Fatal("alice's own code no longer works")
		}
	})
}

func TestSecondRequestWhilePendingNamesTheFirst(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h := newHarness(t)
		w := h.wallet(alice, 100000)
		h.merchant("55501", mama)
		h.sms(alice, "PAY 55501 150")
		p := h.pendingOf(alice)
		h.sms(alice, "PAY 55501 200")
		if txt := h.last(alice).Text; !strings.Contains(txt, p.ID) || !strings.Contains(txt, "waiting") {
			t.Fatalf("reply = %q", txt)
		}
		if b := h.balance(w.ID); b.Held != 15000 {
			t.Fatalf("second hold made: %+v", b)
		}
		h.sms(alice, "cancel")
		if !strings.Contains(h.last(alice).Text, "cancelled") || h.balance(w.ID).Held != 0 {
			t.Fatalf("cancel: %q %+v", h.last(alice).Text, h.balance(w.ID))
		}
		h.sms(alice, "PAY 55501 200")
		if h.pendingOf(alice) == nil {
			t.Fatal("new request after cancel refused")
		}
	})
}

func TestResendKillsOldCode(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h := newHarness(t)
		w := h.wallet(alice, 100000)
		h.merchant("55501", mama)
		h.sms(alice, "PAY 55501 150")
		old := h.code(alice)
		h.sms(alice, "RESEND")
		if txt := h.last(alice).Text; !strings.Contains(txt, "wait") {
			t.Fatalf("resend at once: %q", txt)
		}
		h.clock.Advance(31 * time.Second)
		h.sms(alice, "RESEND")
		fresh := h.code(alice)
		if fresh == old {
			t.Skip("same code drawn twice by chance")
		}
		h.sms(alice, old)
		if h.balance(w.ID).Held != 15000 {
			t.Fatal("old code worked after resend")
		}
		h.sms(alice, fresh)
		if h.balance(w.ID).Posted != 85000 {
			t.Fatalf("fresh code did not confirm: %q", h.last(alice).Text)
		}
	})
}

func TestRestartKeepsPendingPaymentAndItsExpiry(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h := newHarness(t)
		w := h.wallet(alice, 100000)
		h.merchant("55501", mama)
		h.sms(alice, "PAY 55501 100")
		code := h.code(alice)
		h.restart()
		h.sms(alice, code)
		if b := h.balance(w.ID); b.Posted != 90000 {
			t.Fatalf("code after restart did not confirm: %+v %q", b, h.last(alice).Text)
		}

		h.sms(alice, "PAY 55501 100")
		h.restart()
		h.clock.Advance(6 * time.Minute)
		if _, err := h.engine.ExpireDue(context.Background()); err != nil {
			t.Fatal(err)
		}
		if b := h.balance(w.ID); b.Held != 0 || b.Posted != 90000 {
			t.Fatalf("hold after expiry across restart: %+v", b)
		}
		h.assertBalanced()
	})
}

func TestDailyLimit(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h := newHarness(t)
		h.cfg.DailyMax = 50000
		h.restart()
		h.wallet(alice, 1000000)
		h.merchant("55501", mama)
		h.sms(alice, "PAY 55501 400")
		h.sms(alice, h.code(alice))
		h.sms(alice, "PAY 55501 150")
		if txt := h.last(alice).Text; !strings.Contains(txt, "daily limit") || !strings.Contains(txt, "KES 100.00 left") {
			t.Fatalf("reply = %q", txt)
		}
		// A payment that does not happen gives its amount back to the day.
		h.sms(alice, "PAY 55501 100")
		h.sms(alice, "CANCEL")
		h.sms(alice, "PAY 55501 100")
		if h.pendingOf(alice) == nil {
			t.Fatalf("cancelled amount still counted: %q", h.last(alice).Text)
		}
		h.sms(alice, "CANCEL")
		h.clock.Advance(24 * time.Hour)
		h.sms(alice, "PAY 55501 150")
		if h.pendingOf(alice) == nil {
			t.Fatal("limit did not reset the next day")
		}
	})
}

func TestBalanceAndMini(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h := newHarness(t)
		h.wallet(alice, 100000)
		h.merchant("55501", mama)
		h.sms(alice, "MINI")
		h.sms(alice, "PAY 55501 150")
		p := h.pendingOf(alice)
		h.sms(alice, h.code(alice))
		h.sms(alice, "BAL")
		if txt := h.last(alice).Text; !strings.Contains(txt, "KES 850.00") {
			t.Fatalf("BAL = %q", txt)
		}
		h.sms(alice, "mini")
		if txt := h.last(alice).Text; !strings.Contains(txt, p.ID) || !strings.Contains(txt, "-150.00") || !strings.Contains(txt, "+1,000.00") {
			t.Fatalf("MINI = %q", txt)
		}
	})
}

func TestDepositIsIdempotentByReference(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h := newHarness(t)
		w := h.wallet(alice, 0)
		ctx := context.Background()
		p1, err := h.engine.Deposit(ctx, Deposit{Account: w.ID, Amount: 5000, Reference: "CASHIN-1"})
		if err != nil {
			t.Fatal(err)
		}
		p2, err := h.engine.Deposit(ctx, Deposit{Account: w.ID, Amount: 5000, Reference: "CASHIN-1"})
		if err != nil || p2.ID != p1.ID {
			t.Fatalf("replay = %+v, %v", p2, err)
		}
		if h.balance(w.ID).Posted != 5000 {
			t.Fatal("credited twice")
		}
		if _, err := h.engine.Deposit(ctx, Deposit{Account: w.ID, Amount: 6000, Reference: "CASHIN-1"}); err == nil {
			t.Fatal("same reference with another amount accepted")
		}
		if _, err := h.engine.Deposit(ctx, Deposit{Account: "nope", Amount: 6000, Reference: "CASHIN-2"}); err == nil {
			t.Fatal("deposit to unknown account accepted")
		}
		h.assertBalanced()
	})
}

func TestOpenAccountConflictsAndValidation(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h := newHarness(t)
		h.wallet(alice, 0)
		ctx := context.Background()
		if _, err := h.engine.OpenAccount(ctx, OpenAccount{Type: ledger.Wallet, Name: "Again", MSISDN: "0700000001"}); err == nil {
			t.Fatal("taken number accepted")
		}
		h.merchant("55501", "")
		if _, err := h.engine.OpenAccount(ctx, OpenAccount{Type: ledger.Merchant, Name: "Copy", Code: "55501"}); err == nil {
			t.Fatal("taken code accepted")
		}
		for _, bad := range []OpenAccount{
			{Type: "bank", Name: "x", MSISDN: bob},
			{Type: ledger.Wallet, Name: "", MSISDN: bob},
			{Type: ledger.Wallet, Name: "x", MSISDN: "abc"},
			{Type: ledger.Merchant, Name: "x", Code: "12a"},
			{Type: ledger.Cash, Name: "x"},
		} {
			if _, err := h.engine.OpenAccount(ctx, bad); err == nil {
				t.Errorf("accepted %+v", bad)
			}
		}
	})
}

func TestConcurrentRequestsFromOneNumberHoldOnce(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h := newHarness(t)
		w := h.wallet(alice, 100000)
		h.merchant("55501", mama)
		var wg sync.WaitGroup
		for range 20 {
			wg.Add(1)
			go func() { defer wg.Done(); h.sms(alice, "PAY 55501 100") }()
		}
		wg.Wait()
		if b := h.balance(w.ID); b.Held != 10000 {
			t.Fatalf("held = %d, want one hold of 10000", b.Held)
		}
	})
}

func TestCodesAreNeverStoredInClear(t *testing.T) {
	h := newHarness(t)
	h.wallet(alice, 100000)
	h.merchant("55501", mama)
	h.sms(alice, "PAY 55501 150")
	code := h.code(alice)
	h.clock.Advance(31 * time.Second)
	h.sms(alice, "RESEND")
	fresh := h.code(alice)
	h.db.Close()
	raw, err := os.ReadFile(h.rig.Path)
	if err != nil {
		t.Fatal(err)
	}
	wal, _ := os.ReadFile(h.rig.Path + "-wal")
	for _, c := range []string{code, fresh} {
		if bytes.Contains(raw, []byte(c)) || bytes.Contains(wal, []byte(c)) {
			t.Fatalf("code %s found in clear in the database file", c)
		}
	}
}

func TestMerchantNoticeCallQueuedWhenVoiceIsOn(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h := newHarness(t)
		h.cfg.VoiceNumber = "254709000000"
		h.restart()
		h.wallet(alice, 100000)
		h.merchant("55501", mama)
		h.sms(alice, "PAY 55501 150")
		p := h.pendingOf(alice)
		h.sms(alice, h.code(alice))
		ms, err := h.outbox.List(context.Background(), mama, 10)
		if err != nil {
			t.Fatal(err)
		}
		var call *outbox.Message
		for i := range ms {
			if ms[i].Kind == outbox.KindCall {
				call = &ms[i]
			}
		}
		if call == nil || call.Purpose != "merchant_notice" || call.PaymentID != p.ID || call.From != "254709000000" {
			t.Fatalf("call = %+v", call)
		}
	})
}

func TestEachOutcomeIsToldOnce(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h := newHarness(t)
		h.wallet(alice, 100000)
		h.merchant("55501", mama)
		h.sms(alice, "PAY 55501 10")
		c := h.code(alice)
		h.sms(alice, wrongCode(c))
		h.sms(alice, wrongCode(c))
		before := h.count(alice)
		h.sms(alice, wrongCode(c))
		if got := h.count(alice) - before; got != 1 {
			t.Fatalf("%d SMS for a payment failed by wrong codes, want 1", got)
		}
		h.sms(alice, "PAY 55501 10")
		c = h.code(alice)
		h.clock.Advance(6 * time.Minute)
		before = h.count(alice)
		h.sms(alice, c)
		if got := h.count(alice) - before; got != 1 {
			t.Fatalf("%d SMS for a code that expired, want 1", got)
		}
	})
}
