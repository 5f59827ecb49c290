package payswitch

import (
	"strings"
	"testing"
	"time"

	"github.com/payswitch/payswitch/otp"
)

// The decision functions are unexported, so their table tests are internal tests: they
// need no database, no clock and no engine, only rules and a snapshot. The engine's
// behaviour through its API is tested over a real database elsewhere.

// testRules are the rules of the engine tests: KES, codes of 6 digits that live 5
// minutes, and a wrong-code lock at 5 within 15 minutes for an hour.
func testRules(t testing.TB) *rules {
	t.Helper()
	texts, err := NewTexts(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &rules{cfg: Config{Currency: "KES", Shortcode: "22333", CountryCode: "254", Location: time.UTC,
		MinAmount: 100, MaxAmount: 15000000, DailyMax: 30000000,
		Fraud: Fraud{WrongCodesLock: 5, LockWindow: 15 * time.Minute, LockDuration: time.Hour}},
		texts: texts, digits: 6, ttl: 5 * time.Minute, resendInterval: 30 * time.Second}
}

var decideNow = time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)

// waitingPayment is a merchant payment of KES 150 from alice, requested a minute ago.
func waitingPayment() *Payment {
	return &Payment{ID: "PAYAAAAAAA", Type: MerchantPayment, Channel: ChannelSMS, State: StatePendingOTP,
		PayerMSISDN: "254700000001", PayerAccount: "ACPAYER", PayeeAccount: "ACSHOP", PayeeName: "Mama Mboga",
		PayeeCode: "55501", PayeeMSISDN: "254700000009", Amount: 15000, Currency: "KES",
		CreatedAt: decideNow.Add(-time.Minute), ExpiresAt: decideNow.Add(4 * time.Minute)}
}

func TestDecideConfirm(t *testing.T) {
	r := testRules(t)
	now := decideNow.UnixMicro()
	wrong := func(left int) otp.Result { return otp.Result{AttemptsLeft: left} }
	base := func() confirmSnapshot {
		return confirmSnapshot{Now: decideNow, Channel: ChannelUSSD, Number: "254700000001", ReplyTo: "254700000001",
			Waiting: waitingPayment()}
	}
	cases := []struct {
		name string
		snap func(s *confirmSnapshot)
		// what the decision must be
		problem   Problem
		text      string
		step      decisionStep
		move      Event
		post      bool
		release   bool
		lockedAt  int64 // the number's stored lock, when the decision stores one
		wrongs    int   // the number's stored count, when the decision stores one
		originW   int   // the origin's stored count, when the decision stores one
		messages  []string
		authEvent []string
	}{
		{name: "no code checked yet asks for the check", step: checkCodeStep},
		{name: "right code posts and sends receipt, notice and no call without voice",
			snap: func(s *confirmSnapshot) { s.Check, s.Checked = otp.Result{OK: true}, true },
			move: EvConfirm, post: true, messages: []string{"receipt", "notice"}, authEvent: []string{"confirmed"}},
		{name: "right code for airtime starts the top-up",
			snap: func(s *confirmSnapshot) {
				s.Waiting.Type, s.Waiting.TargetMSISDN = AirtimePayment, "254700000001"
				s.Check, s.Checked = otp.Result{OK: true}, true
			},
			move: EvStartTopup, post: true, messages: []string{"receipt"}, authEvent: []string{"confirmed"}},
		{name: "wrong code with tries left", snap: func(s *confirmSnapshot) { s.Check, s.Checked = wrong(2), true },
			problem: ProblemWrongCode, text: "2 tries left", wrongs: 1, authEvent: []string{"wrong"}},
		{name: "the last try left says 1 try", snap: func(s *confirmSnapshot) { s.Check, s.Checked = wrong(1), true },
			problem: ProblemWrongCode, text: "1 try left", wrongs: 1, authEvent: []string{"wrong"}},
		{name: "the last wrong code fails the payment",
			snap:    func(s *confirmSnapshot) { s.Check, s.Checked = otp.Result{Exhausted: true}, true },
			problem: ProblemTooManyAttempts, text: "too many wrong codes", move: EvFail, release: true, wrongs: 1,
			messages: []string{"failed"}, authEvent: []string{otp.EventExhausted}},
		{name: "the wrong code that locks the number fails the payment",
			snap: func(s *confirmSnapshot) {
				s.Lock = numberLock{wrongWindow: wrongWindow{Start: now - 60e6, Count: 4}}
				s.Check, s.Checked = wrong(2), true
			},
			problem: ProblemTooManyAttempts, text: "locked until 10:00 UTC", move: EvFail, release: true,
			lockedAt: decideNow.Add(time.Hour).UnixMicro(), messages: []string{"failed"},
			authEvent: []string{"wrong", otp.EventExhausted}},
		{name: "wrong codes of an old window start again",
			snap: func(s *confirmSnapshot) {
				s.Lock = numberLock{wrongWindow: wrongWindow{Start: now - int64(16*time.Minute/time.Microsecond), Count: 4}}
				s.Check, s.Checked = wrong(2), true
			},
			problem: ProblemWrongCode, wrongs: 1, authEvent: []string{"wrong"}},
		{name: "a locked number's code is not checked: the payment fails",
			snap:    func(s *confirmSnapshot) { s.Lock.Until = decideNow.Add(time.Minute).UnixMicro() },
			problem: ProblemTooManyAttempts, text: "locked until 09:01 UTC", move: EvFail, release: true,
			messages: []string{"failed"}, authEvent: []string{otp.EventExhausted}},
		{name: "an origin's wrong code counts for it too",
			snap:    func(s *confirmSnapshot) { s.Origin, s.Check, s.Checked = "ussd:10.0.0.1", wrong(2), true },
			problem: ProblemWrongCode, wrongs: 1, originW: 1, authEvent: []string{"wrong"}},
		{name: "an origin that used up its wrong codes is refused unchecked",
			snap: func(s *confirmSnapshot) {
				s.Origin, s.OriginWrong = "ussd:10.0.0.1", wrongWindow{Start: now - 60e6, Count: 4}
			},
			problem: ProblemOriginLimited, text: "reply to our SMS"},
		{name: "an origin's old window does not refuse",
			snap: func(s *confirmSnapshot) {
				s.Origin = "ussd:10.0.0.1"
				s.OriginWrong = wrongWindow{Start: now - int64(15*time.Minute/time.Microsecond), Count: 4}
			},
			step: checkCodeStep},
		{name: "overdue payment expires unchecked",
			snap:    func(s *confirmSnapshot) { s.Waiting.ExpiresAt = decideNow },
			problem: ProblemCodeExpired, move: EvExpire, release: true, messages: []string{"expired"},
			authEvent: []string{"expired"}},
		{name: "a code otp found expired expires the payment",
			snap:    func(s *confirmSnapshot) { s.Check, s.Checked = otp.Result{Expired: true}, true },
			problem: ProblemCodeExpired, move: EvExpire, release: true, messages: []string{"expired"},
			authEvent: []string{"expired"}},
		{name: "no waiting payment", snap: func(s *confirmSnapshot) { s.Waiting = nil },
			problem: ProblemNoPending, text: "no payment waiting"},
		{name: "no waiting payment on a locked number says locked",
			snap: func(s *confirmSnapshot) {
				s.Waiting, s.Lock.Until = nil, decideNow.Add(time.Minute).UnixMicro()
			},
			problem: ProblemLocked, text: "locked until 09:01 UTC"},
		{name: "a session's other payment is not confirmed", snap: func(s *confirmSnapshot) { s.AskedFor = "PAYBBBBBBB" },
			problem: ProblemNoPending},
		{name: "a refusal by SMS is answered by SMS",
			snap:    func(s *confirmSnapshot) { s.Channel, s.Check, s.Checked = ChannelSMS, wrong(2), true },
			problem: ProblemWrongCode, wrongs: 1, messages: []string{"reply"}, authEvent: []string{"wrong"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := base()
			if tc.snap != nil {
				tc.snap(&s)
			}
			d := r.confirm(s)
			if d.Step != tc.step || d.Outcome.Problem != tc.problem || !strings.Contains(d.Outcome.Text, tc.text) {
				t.Fatalf("step %v, outcome %q %q; want step %v, %q with %q", d.Step, d.Outcome.Problem, d.Outcome.Text,
					tc.step, tc.problem, tc.text)
			}
			if d.Move != tc.move || d.Post != tc.post || d.Release != tc.release {
				t.Errorf("move %q post %v release %v; want %q %v %v", d.Move, d.Post, d.Release, tc.move, tc.post, tc.release)
			}
			var gotLock int64
			var gotWrongs, gotOrigin int
			if d.NumberWrong != nil {
				gotLock, gotWrongs = d.NumberWrong.Until, d.NumberWrong.Count
			}
			if d.OriginWrong != nil {
				gotOrigin = d.OriginWrong.Count
			}
			if gotLock != tc.lockedAt || gotWrongs != tc.wrongs || gotOrigin != tc.originW {
				t.Errorf("stored lock %d, wrongs %d, origin's %d; want %d, %d, %d", gotLock, gotWrongs, gotOrigin,
					tc.lockedAt, tc.wrongs, tc.originW)
			}
			if got := purposes(d.Messages); got != strings.Join(tc.messages, ",") {
				t.Errorf("messages %s, want %v", got, tc.messages)
			}
			var evs []string
			for _, a := range d.Auth {
				evs = append(evs, a.Event)
			}
			if strings.Join(evs, ",") != strings.Join(tc.authEvent, ",") {
				t.Errorf("auth events %v, want %v", evs, tc.authEvent)
			}
		})
	}
}

// purposes lists ms's purposes, in order.
func purposes(ms []Message) string {
	var p []string
	for _, m := range ms {
		p = append(p, m.Purpose)
	}
	return strings.Join(p, ",")
}

// A lock by wrong codes, and an origin's reaching its limit, are after-effects to log.
func TestDecideConfirmReportsLockAndOriginLimit(t *testing.T) {
	r := testRules(t)
	s := confirmSnapshot{Now: decideNow, Channel: ChannelIVR, Origin: "ivr:10.0.0.2", Number: "254700000001",
		Waiting: waitingPayment(), Check: otp.Result{AttemptsLeft: 2}, Checked: true,
		Lock:        numberLock{wrongWindow: wrongWindow{Start: decideNow.UnixMicro() - 1, Count: 4}},
		OriginWrong: wrongWindow{Start: decideNow.UnixMicro() - 1, Count: 3}}
	d := r.confirm(s)
	if !d.Locked.Equal(decideNow.Add(time.Hour)) || d.OriginLimited != 4 || d.Origin != s.Origin {
		t.Fatalf("locked %v, origin limited %d by %q", d.Locked, d.OriginLimited, d.Origin)
	}
	if d.Outcome.LockedUntil != d.Locked || d.NumberWrong.Count != 0 || d.NumberWrong.Start != decideNow.UnixMicro() {
		t.Fatalf("outcome %+v, stored %+v", d.Outcome, d.NumberWrong)
	}
}

// The receipt and the payee's notice show balances that only the ledger's post knows:
// the decision names them, the applier fills them in.
func TestDecideConfirmLeavesBalancesToTheLedger(t *testing.T) {
	r := testRules(t)
	r.cfg.VoiceNumber = "254711000000"
	d := r.confirm(confirmSnapshot{Now: decideNow, Channel: ChannelSMS, Number: "254700000001",
		Waiting: waitingPayment(), Check: otp.Result{OK: true}, Checked: true})
	if got := purposes(d.Messages); got != "receipt,notice,merchant_notice" {
		t.Fatalf("messages %s", got)
	}
	receipt, notice := d.Messages[0], d.Messages[1]
	if receipt.Balance.Account != "ACPAYER" || !receipt.Answer || receipt.Key != "receipt" || !receipt.Receipt ||
		notice.Balance.Account != "ACSHOP" || notice.Answer || notice.Key != "payee_notice" {
		t.Fatalf("receipt %+v, notice %+v", receipt, notice)
	}
	if d.Messages[2].Kind != "call" || d.Messages[2].From != "254711000000" {
		t.Fatalf("call %+v", d.Messages[2])
	}
}

// smpp.payer_receipt_dlr: false sends the payer's receipt SMS, of a payment confirmed
// and of one guaranteed, without asking for a delivery receipt; the code SMS of a new
// payment still asks, since the switch records whether a code reached the phone.
func TestDecideReceiptWithoutDeliveryReceipt(t *testing.T) {
	r := testRules(t)
	r.cfg.NoPayerReceiptDLR = true
	d := r.confirm(confirmSnapshot{Now: decideNow, Channel: ChannelSMS, Number: "254700000001",
		Waiting: waitingPayment(), Check: otp.Result{OK: true}, Checked: true})
	if got := purposes(d.Messages); got != "receipt,notice" || d.Messages[0].Receipt || d.Messages[1].Receipt {
		t.Fatalf("messages %s: %+v", got, d.Messages)
	}
	escrowed := waitingPayment()
	escrowed.Escrow = true
	d = r.confirm(confirmSnapshot{Now: decideNow, Channel: ChannelSMS, Number: "254700000001",
		Waiting: escrowed, Check: otp.Result{OK: true}, Checked: true})
	for _, m := range d.Messages {
		if m.Purpose == "receipt" && m.Receipt {
			t.Fatalf("a guaranteed payment's receipt SMS asks for a delivery receipt: %+v", m)
		}
	}
}
