package payswitch

import (
	"strings"
	"testing"
	"time"

	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/otp"
)

// waitingRequest is Mama Mboga's request to alice for KES 200, sent a minute ago and
// valid for ten.
func waitingRequest() *Payment {
	return &Payment{ID: "PAYRRRRRRR", Type: MerchantPayment, Channel: ChannelAPI, State: StateRequested,
		PayerMSISDN: "254700000001", PayerAccount: "ACPAYER", PayeeAccount: "ACSHOP", PayeeName: "Mama Mboga",
		PayeeCode: "55501", PayeeMSISDN: "254700000009", Amount: 20000, Currency: "KES", Reference: "INV-7",
		CreatedAt: decideNow.Add(-time.Minute), ExpiresAt: decideNow.Add(9 * time.Minute)}
}

// funds are what a confirmed request finds: both accounts active, the payer with
// available, nothing spent today.
func funds(available int64) *requestFunds {
	return &requestFunds{Payer: ledger.Account{ID: "ACPAYER", Status: ledger.Active, Balance: ledger.Balance{Available: available}},
		Payee: ledger.Account{ID: "ACSHOP", Status: ledger.Active}}
}

func TestDecideConfirmWithARequestWaiting(t *testing.T) {
	r := testRules(t)
	now := decideNow.UnixMicro()
	wrong := func(left int) otp.Result { return otp.Result{AttemptsLeft: left} }
	ok := otp.Result{OK: true}
	both := func() confirmSnapshot {
		return confirmSnapshot{Now: decideNow, Channel: ChannelSMS, Number: "254700000001", ReplyTo: "254700000001",
			Waiting: waitingPayment(), Request: waitingRequest()}
	}
	only := func() confirmSnapshot {
		s := both()
		s.Waiting = nil
		return s
	}
	cases := []struct {
		name string
		snap func() confirmSnapshot
		// what the decision must be
		step      decisionStep
		check     string // the codes it asks checked
		problem   Problem
		text      string
		payment   string // the main decision's payment
		move      Event
		transfer  bool
		post      bool
		events    string
		messages  string
		wrongs    int    // the number's stored count, when the decision stores one
		also      string // the other decisions' payments and moves, "id:move"
		authEvent string // the main decision's, in order
	}{
		{name: "the request's code is checked against the request only",
			snap: func() confirmSnapshot { s := both(); s.Matched = "PAYRRRRRRR"; return s }, step: checkCodeStep, check: "PAYRRRRRRR"},
		{name: "the own payment's code is checked against it only",
			snap: func() confirmSnapshot { s := both(); s.Matched = "PAYAAAAAAA"; return s }, step: checkCodeStep, check: "PAYAAAAAAA"},
		{name: "a code of neither is checked against both",
			snap: both, step: checkCodeStep, check: "PAYAAAAAAA,PAYRRRRRRR"},
		{name: "the right code for the request asks for its funds",
			snap: func() confirmSnapshot {
				s := both()
				s.Matched, s.RequestCheck, s.RequestChecked = "PAYRRRRRRR", ok, true
				return s
			}, step: fundsStep},
		{name: "with the funds there the request completes by a transfer",
			snap: func() confirmSnapshot {
				s := both()
				s.Matched, s.RequestCheck, s.RequestChecked, s.Funds = "PAYRRRRRRR", ok, true, funds(20000)
				return s
			}, payment: "PAYRRRRRRR", move: EvConfirm, transfer: true, events: EventPaymentCompleted,
			messages: "receipt,notice", authEvent: "confirmed"},
		{name: "the right code for the own payment posts its hold",
			snap: func() confirmSnapshot {
				s := both()
				s.Matched, s.Check, s.Checked = "PAYAAAAAAA", ok, true
				return s
			}, payment: "PAYAAAAAAA", move: EvConfirm, post: true, events: EventPaymentCompleted,
			messages: "receipt,notice", authEvent: "confirmed"},
		{name: "a guess costs both a try and counts once",
			snap: func() confirmSnapshot {
				s := both()
				s.Check, s.Checked, s.RequestCheck, s.RequestChecked = wrong(2), true, wrong(1), true
				return s
			}, problem: ProblemWrongCode, text: "Tries left: 2 for PAYAAAAAAA, 1 for PAYRRRRRRR", payment: "PAYAAAAAAA",
			messages: "reply", wrongs: 1, also: "PAYRRRRRRR:", authEvent: "wrong"},
		{name: "a guess that used up the request's tries fails it; the own payment still waits",
			snap: func() confirmSnapshot {
				s := both()
				s.Check, s.Checked, s.RequestCheck, s.RequestChecked = wrong(2), true, otp.Result{Exhausted: true}, true
				return s
			}, problem: ProblemWrongCode, text: "Wrong code for PAYAAAAAAA. 2 tries left", payment: "PAYAAAAAAA",
			messages: "reply", wrongs: 1, also: "PAYRRRRRRR:fail", authEvent: "wrong"},
		{name: "a guess that locks the number fails both",
			snap: func() confirmSnapshot {
				s := both()
				s.Lock = numberLock{wrongWindow: wrongWindow{Start: now - 60e6, Count: 4}}
				s.Check, s.Checked, s.RequestCheck, s.RequestChecked = wrong(2), true, wrong(2), true
				return s
			}, problem: ProblemTooManyAttempts, text: "locked until", payment: "PAYAAAAAAA", move: EvFail,
			messages: "failed", also: "PAYRRRRRRR:fail", authEvent: "wrong,exhausted"},
		{name: "a locked number's code fails both unchecked",
			snap: func() confirmSnapshot {
				s := both()
				s.Lock.Until = decideNow.Add(time.Minute).UnixMicro()
				return s
			}, problem: ProblemTooManyAttempts, payment: "PAYAAAAAAA", move: EvFail, messages: "failed",
			also: "PAYRRRRRRR:fail", authEvent: "exhausted"},
		{name: "an origin that used up its wrong codes is refused unchecked",
			snap: func() confirmSnapshot {
				s := both()
				s.Channel, s.Origin, s.OriginWrong = ChannelUSSD, "ussd:10.0.0.1", wrongWindow{Start: now - 60e6, Count: 4}
				return s
			}, problem: ProblemOriginLimited},
		{name: "both overdue: both expire",
			snap: func() confirmSnapshot {
				s := both()
				s.Now = s.Request.ExpiresAt
				return s
			}, problem: ProblemCodeExpired, payment: "PAYAAAAAAA", move: EvExpire, messages: "expired",
			also: "PAYRRRRRRR:expire", authEvent: "expired"},
		{name: "the request's code after its time expires it",
			snap: func() confirmSnapshot {
				s := both()
				s.Matched, s.Request.ExpiresAt = "PAYRRRRRRR", decideNow
				return s
			}, problem: ProblemCodeExpired, text: "request of Mama Mboga (55501) for KES 200.00 expired", payment: "PAYRRRRRRR",
			move: EvExpire, events: EventRequestExpired, messages: "expired", authEvent: "expired"},
		{name: "a session naming the request checks it alone",
			snap: func() confirmSnapshot { s := both(); s.AskedFor = "PAYRRRRRRR"; return s }, step: checkCodeStep, check: "PAYRRRRRRR"},
		{name: "a session naming neither", snap: func() confirmSnapshot { s := both(); s.AskedFor = "PAYZZZZZZZ"; return s },
			problem: ProblemNoPending, messages: "reply"},
		{name: "the request alone: a wrong code", snap: func() confirmSnapshot {
			s := only()
			s.RequestCheck, s.RequestChecked = wrong(2), true
			return s
		}, problem: ProblemWrongCode, text: "Wrong code for PAYRRRRRRR. 2 tries left", payment: "PAYRRRRRRR",
			messages: "reply", wrongs: 1, authEvent: "wrong"},
		{name: "the request alone: its last wrong code fails it, nothing to release",
			snap: func() confirmSnapshot {
				s := only()
				s.RequestCheck, s.RequestChecked = otp.Result{Exhausted: true}, true
				return s
			}, problem: ProblemTooManyAttempts, text: "PAYRRRRRRR failed: too many wrong codes. Nothing was paid.",
			payment: "PAYRRRRRRR", move: EvFail, events: EventRequestFailed, messages: "failed", wrongs: 1, authEvent: "exhausted"},
		{name: "the request alone: too little money fails it",
			snap: func() confirmSnapshot {
				s := only()
				s.RequestCheck, s.RequestChecked, s.Funds = ok, true, funds(19999)
				return s
			}, problem: ProblemInsufficientFunds, text: "insufficient funds to pay KES 200.00 to Mama Mboga (55501) (KES 199.99 available)",
			payment: "PAYRRRRRRR", move: EvFail, events: EventRequestFailed, messages: "failed", authEvent: "confirmed"},
		{name: "the request alone: a spent daily limit fails it",
			snap: func() confirmSnapshot {
				s := only()
				s.RequestCheck, s.RequestChecked, s.Funds = ok, true, funds(100000)
				s.Funds.Spent = 29990000
				return s
			}, problem: ProblemDailyLimit, text: "KES 100.00 left today", payment: "PAYRRRRRRR", move: EvFail,
			events: EventRequestFailed, messages: "failed", authEvent: "confirmed"},
		{name: "the request alone: a frozen payer fails it",
			snap: func() confirmSnapshot {
				s := only()
				s.RequestCheck, s.RequestChecked, s.Funds = ok, true, funds(100000)
				s.Funds.Payer.Status = ledger.Frozen
				return s
			}, problem: ProblemAccountInactive, payment: "PAYRRRRRRR", move: EvFail, events: EventRequestFailed,
			messages: "failed", authEvent: "confirmed"},
		{name: "the request alone: a frozen merchant fails it",
			snap: func() confirmSnapshot {
				s := only()
				s.RequestCheck, s.RequestChecked, s.Funds = ok, true, funds(100000)
				s.Funds.Payee.Status = ledger.Frozen
				return s
			}, problem: ProblemPayeeInactive, text: "Mama Mboga (55501) cannot receive payments", payment: "PAYRRRRRRR",
			move: EvFail, events: EventRequestFailed, messages: "failed", authEvent: "confirmed"},
		{name: "an airtime reminder's right code starts its top-up",
			snap: func() confirmSnapshot {
				s := only()
				s.Request.Type, s.Request.TargetMSISDN, s.Request.PayeeAccount = AirtimePayment, "254700000001", "airtime_clearing:a"
				s.RequestCheck, s.RequestChecked, s.Funds = ok, true, funds(100000)
				return s
			}, payment: "PAYRRRRRRR", move: EvStartTopup, transfer: true, messages: "receipt", authEvent: "confirmed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := r.confirm(tc.snap())
			if d.Step != tc.step || strings.Join(d.CheckCodes, ",") != tc.check {
				t.Fatalf("step %v checking %v; want %v checking %q", d.Step, d.CheckCodes, tc.step, tc.check)
			}
			if d.Step != noStep {
				return
			}
			if d.Outcome.Problem != tc.problem || !strings.Contains(d.Outcome.Text, tc.text) {
				t.Fatalf("outcome %q %q; want %q with %q", d.Outcome.Problem, d.Outcome.Text, tc.problem, tc.text)
			}
			if got := idOf(d.Payment); got != tc.payment {
				t.Errorf("payment %q, want %q", got, tc.payment)
			}
			if d.Move != tc.move || (d.Transfer != nil) != tc.transfer || d.Post != tc.post {
				t.Errorf("move %q transfer %v post %v; want %q %v %v", d.Move, d.Transfer != nil, d.Post, tc.move, tc.transfer, tc.post)
			}
			if d.Payment != nil && d.Payment.State == StateRequested && (d.Release || d.Post) {
				t.Errorf("a request released or posted a hold it never had: %+v", d)
			}
			if d.Transfer != nil && (d.Transfer.Debit != "ACPAYER" || d.Transfer.Amount != 20000 || !d.AddDaily || !d.DailyAt.Equal(decideNow)) {
				t.Errorf("transfer %+v, add daily %v at %v", d.Transfer, d.AddDaily, d.DailyAt)
			}
			if got := strings.Join(d.Events, ","); got != tc.events {
				t.Errorf("events %q, want %q", got, tc.events)
			}
			if got := purposes(d.Messages); got != tc.messages {
				t.Errorf("messages %s, want %s", got, tc.messages)
			}
			var wrongs int
			if d.NumberWrong != nil {
				wrongs = d.NumberWrong.Count
			}
			if wrongs != tc.wrongs && tc.move != EvFail {
				t.Errorf("the number's wrong codes %d, want %d", wrongs, tc.wrongs)
			}
			var also []string
			for _, a := range d.Also {
				also = append(also, idOf(a.Payment)+":"+string(a.Move))
				if a.NumberWrong != nil || a.OriginWrong != nil {
					t.Errorf("the other payment's decision counts the guess again: %+v", a)
				}
			}
			if got := strings.Join(also, ","); got != tc.also {
				t.Errorf("also %q, want %q", got, tc.also)
			}
			var evs []string
			for _, a := range d.Auth {
				evs = append(evs, a.Event)
			}
			if got := strings.Join(evs, ","); got != tc.authEvent {
				t.Errorf("auth events %s, want %s", got, tc.authEvent)
			}
		})
	}
}

// A guess with both waiting puts its "wrong" on each payment's history, and the request
// that fails of it says so to its merchant.
func TestDecideGuessNotesBoth(t *testing.T) {
	r := testRules(t)
	s := confirmSnapshot{Now: decideNow, Channel: ChannelSMS, Number: "254700000001", Waiting: waitingPayment(),
		Request: waitingRequest(), Check: otp.Result{AttemptsLeft: 2}, Checked: true,
		RequestCheck: otp.Result{AttemptsLeft: 2}, RequestChecked: true}
	d := r.confirm(s)
	if len(d.Also) != 1 || len(d.Also[0].Auth) != 1 || d.Also[0].Auth[0].Event != "wrong" || d.Also[0].Payment.ID != "PAYRRRRRRR" ||
		len(d.Also[0].Messages) != 0 {
		t.Fatalf("the request's part %+v", d.Also)
	}
}

func TestDecideDecline(t *testing.T) {
	r := testRules(t)
	base := func() declineSnapshot {
		return declineSnapshot{Now: decideNow, Channel: ChannelSMS, ReplyTo: "254700000001", Request: waitingRequest()}
	}
	cases := []struct {
		name     string
		snap     func(s *declineSnapshot)
		problem  Problem
		text     string
		move     Event
		events   string
		messages string
	}{
		{name: "NO declines the request", text: "PAYRRRRRRR declined. Nothing was paid to Mama Mboga (55501).",
			move: EvDecline, events: EventRequestDeclined, messages: "reply"},
		{name: "by USSD the payer is told by SMS too", snap: func(s *declineSnapshot) { s.Channel = ChannelUSSD },
			text: "declined", move: EvDecline, events: EventRequestDeclined, messages: "reply"},
		{name: "nothing waits", snap: func(s *declineSnapshot) { s.Request = nil }, problem: ProblemNoRequest,
			text: "no request to pay waiting", messages: "reply"},
		{name: "nothing waits, asked by USSD: no SMS", snap: func(s *declineSnapshot) { s.Request, s.Channel = nil, ChannelUSSD },
			problem: ProblemNoRequest},
		{name: "a session names another", snap: func(s *declineSnapshot) { s.AskedFor = "PAYZZZZZZZ" }, problem: ProblemNoRequest,
			messages: "reply"},
		{name: "an overdue request expires", snap: func(s *declineSnapshot) { s.Now = s.Request.ExpiresAt },
			problem: ProblemCodeExpired, text: "expired", move: EvExpire, events: EventRequestExpired, messages: "expired"},
		{name: "an airtime offer declined names no payee", snap: func(s *declineSnapshot) { s.Request.Type = AirtimePayment },
			text: "PAYRRRRRRR declined. No airtime was bought", move: EvDecline, messages: "reply"},
		{name: "an airtime offer that expired", snap: func(s *declineSnapshot) {
			s.Request.Type, s.Now = AirtimePayment, s.Request.ExpiresAt
		}, problem: ProblemCodeExpired, text: "of airtime expired", move: EvExpire, messages: "expired"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := base()
			if c.snap != nil {
				c.snap(&s)
			}
			d := r.decline(s)
			if d.Outcome.Problem != c.problem || !strings.Contains(d.Outcome.Text, c.text) || d.Move != c.move {
				t.Fatalf("outcome %q %q move %q; want %q %q %q", d.Outcome.Problem, d.Outcome.Text, d.Move, c.problem, c.text, c.move)
			}
			if got := strings.Join(d.Events, ","); got != c.events {
				t.Errorf("events %q, want %q", got, c.events)
			}
			if got := purposes(d.Messages); got != c.messages {
				t.Errorf("messages %q, want %q", got, c.messages)
			}
			if d.Move != "" && (!d.Kill || d.Release) {
				t.Errorf("kill %v release %v: a request's code dies, and it held nothing", d.Kill, d.Release)
			}
		})
	}
}

func TestDecideExpireDueRequest(t *testing.T) {
	r := testRules(t)
	p := waitingRequest()
	if d := r.expireDue(p, p.ExpiresAt.Add(-time.Microsecond)); d.Move != "" {
		t.Fatalf("before its time: %+v", d)
	}
	d := r.expireDue(p, p.ExpiresAt)
	if d.Move != EvExpire || !d.Kill || d.Release || strings.Join(d.Events, ",") != EventRequestExpired ||
		purposes(d.Messages) != "expired" || !strings.Contains(d.Messages[0].Text, "Nothing was paid") {
		t.Fatalf("at its time: %+v", d)
	}
	for _, st := range []State{StateDeclined, StateCompleted, StateFailed} {
		q := waitingRequest()
		q.State = st
		if d := r.expireDue(q, q.ExpiresAt); d.Move != "" {
			t.Errorf("a request %s was expired: %+v", st, d)
		}
	}
	// An airtime reminder has no merchant to tell.
	q := waitingRequest()
	q.Type = AirtimePayment
	if d := r.expireDue(q, q.ExpiresAt); len(d.Events) != 0 {
		t.Errorf("an airtime reminder's events %v", d.Events)
	}
}

func TestRequestStates(t *testing.T) {
	for _, c := range []struct {
		ev   Event
		want State
	}{
		{EvConfirm, StateCompleted}, {EvStartTopup, StateTopupPending}, {EvFail, StateFailed},
		{EvExpire, StateExpired}, {EvDecline, StateDeclined},
	} {
		if got, err := Next(StateRequested, c.ev); err != nil || got != c.want {
			t.Errorf("requested + %s = %s, %v; want %s", c.ev, got, err, c.want)
		}
	}
	if _, err := Next(StateRequested, EvCancel); err == nil {
		t.Error("a request was cancelled: it is declined")
	}
	if _, err := Next(StatePendingOTP, EvDecline); err == nil {
		t.Error("an own payment was declined: it is cancelled")
	}
	if !StateDeclined.Final() {
		t.Error("declined is not final")
	}
}
