package ussd

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/smpp"
	payswitch "github.com/payswitch/payswitch/switch"
)

var _ smpp.PushSessions = (*Menu)(nil)

// pushEngine is a harness's real engine with Confirm and Decline played by the test,
// which records every call: requests to pay are the engine's, and these tests are about
// the sessions. The code is rightCode; three wrong ones fail the payment.
type pushEngine struct {
	Engine // the interface, so that the real engine's own Decline, if any, is not promoted

	mu    sync.Mutex // guards calls and wrong
	calls []string   // "confirm <channel> <msisdn> <payment> <code>", "decline <channel> <msisdn> <payment>"
	wrong int
}

const (
	rightCode = "123456"
	pushID    = "ABCD123456"
	pushText  = "Mama Mboga (55501) asks KES 150.00 for Order 7, ref ABCD123456.\n1. Pay\n2. Refuse"
)

func (e *pushEngine) Confirm(_ context.Context, ch payswitch.Channel, msisdn, paymentID, code string) (payswitch.Outcome, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls = append(e.calls, strings.Join([]string{"confirm", string(ch), msisdn, paymentID, code}, " "))
	switch {
	case code == rightCode:
		return payswitch.Outcome{Text: paymentID + " confirmed. KES 150.00 paid to Mama Mboga (55501)."}, nil
	case e.wrong < 2:
		e.wrong++
		return payswitch.Outcome{Problem: payswitch.ProblemWrongCode, Text: fmt.Sprintf("Wrong code. %d tries left.", 3-e.wrong)}, nil
	}
	return payswitch.Outcome{Problem: payswitch.ProblemTooManyAttempts, Text: paymentID + " failed: too many wrong codes."}, nil
}

func (e *pushEngine) Decline(_ context.Context, ch payswitch.Channel, msisdn, paymentID string) (payswitch.Outcome, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls = append(e.calls, strings.Join([]string{"decline", string(ch), msisdn, paymentID}, " "))
	return payswitch.Outcome{Text: paymentID + " declined. Nothing was paid."}, nil
}

func (e *pushEngine) called() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.calls...)
}

// pushMenu is a Menu over a pushEngine, on a harness's clock.
type pushMenu struct {
	*Menu
	t      testing.TB
	h      *harness
	engine *pushEngine
}

func newPushMenu(t testing.TB) *pushMenu {
	t.Helper()
	h := newHarness(t, nil)
	h.Wallet(alice, 100000)
	h.Wallet(bob, 0)
	e := &pushEngine{Engine: h.Engine}
	m, err := New(e, Config{ServiceCode: "*384#", Now: h.Clock.Now, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	if m.decline == nil {
		t.Fatal("the menus did not take Decline from the engine")
	}
	return &pushMenu{Menu: m, t: t, h: h, engine: e}
}

// open pushes pushText about pushID to msisdn over carrier-a.
func (p *pushMenu) open(msisdn string) (string, []byte) {
	p.t.Helper()
	text, info, err := p.OpenPush("carrier-a", msisdn, pushID, pushText)
	if err != nil {
		p.t.Fatalf("OpenPush: %v", err)
	}
	if len(info) != 2 || info[1] != 0 {
		p.t.Fatalf("its_session_info %x", info)
	}
	return text, info
}

// answer sends one USSR confirm and returns the screen as a gateway would show it.
func (p *pushMenu) answer(link, from string, info []byte, text string) string {
	p.t.Helper()
	reply, end, err := p.HandleSMPP(context.Background(), link, from, OpUSSRConfirm, info, text)
	if err != nil {
		p.t.Fatalf("HandleSMPP %q: %v", text, err)
	}
	scr := Screen{Text: reply, End: end}.String()
	checkAnswer(p.t, scr)
	return scr
}

func wantCalls(t testing.TB, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("engine calls %q, want %q", got, want)
	}
}

func TestPushPaysWithTheCode(t *testing.T) {
	p := newPushMenu(t)
	text, info := p.open(alice)
	if text != pushText {
		t.Fatalf("pushed %q", text)
	}
	wantPrefix(t, p.answer("carrier-a", alice, info, "1"), "CON Enter the code we sent you by SMS.")
	got := p.answer("carrier-a", alice, info, "000000")
	wantPrefix(t, got, "CON Wrong code. 2 tries left.\nEnter the code we sent you by SMS.")
	// A phone may spell its number otherwise; it is the same number.
	got = p.answer("carrier-a", "+"+alice, []byte{info[0], 6}, rightCode)
	if got != "END "+pushID+" confirmed. KES 150.00 paid to Mama Mboga (55501)." {
		t.Fatalf("after the code: %q", got)
	}
	wantCalls(t, p.engine.called(),
		"confirm ussd "+alice+" "+pushID+" 000000",
		"confirm ussd "+alice+" "+pushID+" "+rightCode)
	// Ended: a repeat hears the same and reaches no engine.
	wantPrefix(t, p.answer("carrier-a", alice, info, rightCode), "END "+pushID+" confirmed.")
	if n := len(p.engine.called()); n != 2 {
		t.Fatalf("%d engine calls after a repeat", n)
	}
}

func TestPushWrongCodesUntilTheEngineFailsIt(t *testing.T) {
	p := newPushMenu(t)
	_, info := p.open(alice)
	p.answer("carrier-a", alice, info, "1")
	wantPrefix(t, p.answer("carrier-a", alice, info, "111111"), "CON Wrong code. 2 tries left.")
	wantPrefix(t, p.answer("carrier-a", alice, info, "222222"), "CON Wrong code. 1 tries left.")
	if got := p.answer("carrier-a", alice, info, "333333"); got != "END "+pushID+" failed: too many wrong codes." {
		t.Fatalf("third wrong code: %q", got)
	}
}

func TestPushRefuses(t *testing.T) {
	p := newPushMenu(t)
	_, info := p.open(alice)
	if got := p.answer("carrier-a", alice, info, "2"); got != "END "+pushID+" declined. Nothing was paid." {
		t.Fatalf("refusal: %q", got)
	}
	wantCalls(t, p.engine.called(), "decline ussd "+alice+" "+pushID)

	// An engine that cannot decline: the payer is told how to refuse by SMS.
	m, err := New(struct{ Engine }{p.engine}, Config{Now: p.h.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	_, info, err = m.OpenPush("carrier-a", alice, pushID, pushText)
	if err != nil {
		t.Fatal(err)
	}
	reply, end, err := m.HandleSMPP(context.Background(), "carrier-a", alice, OpUSSRConfirm, info, "2")
	if err != nil || !end || reply != "To refuse this request, reply NO to our SMS." {
		t.Fatalf("refusal without Decline: %q end=%v err=%v", reply, end, err)
	}
}

// The phone proves itself by being the number the screen went to, over the link it went
// out on: the same session number from another number, or over another link (an
// aggregator's bind may send as any of its numbers), is not the push's session, and
// ends as an unknown session does, changing nothing.
func TestPushAnsweredOnlyByItsNumberOverItsLink(t *testing.T) {
	p := newPushMenu(t)
	_, info := p.open(alice)
	for _, tc := range []struct{ name, link, from string }{
		{"another number", "carrier-a", bob},
		{"another link", "server:agg", alice},
		{"no number", "carrier-a", "hello"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, text := range []string{"1", "2", rightCode} {
				reply, end, _ := p.HandleSMPP(context.Background(), tc.link, tc.from, OpUSSRConfirm, info, text)
				if reply != "" && (!end || !strings.HasPrefix(reply, "This session has ended.")) {
					t.Fatalf("%q from %s over %s: %q end=%v", text, tc.from, tc.link, reply, end)
				}
			}
		})
	}
	wantCalls(t, p.engine.called())
	// Without the session number, nothing is a push either.
	reply, _, _ := p.HandleSMPP(context.Background(), "carrier-a", alice, OpUSSRConfirm, nil, "2")
	wantPrefix(t, reply, "This session has ended.")
	// The push itself is untouched.
	wantPrefix(t, p.answer("carrier-a", alice, info, "2"), "END "+pushID+" declined.")
}

func TestPushBadAnswers(t *testing.T) {
	p := newPushMenu(t)
	const screen = "CON Invalid choice.\n" + pushText
	const codeAgain = "CON Codes have 6 digits.\nEnter the code we sent you by SMS."
	tests := []struct {
		name   string
		before []string // answers that lead to the node under test
		answer string
		want   string
	}{
		{"empty", nil, "", screen},
		{"blank", nil, "   ", screen},
		{"another option", nil, "3", screen},
		{"two digits", nil, "12", screen},
		{"words", nil, "PAY", screen},
		{"not UTF-8", nil, "\xff\xfe", screen},
		{"a star", nil, "*", screen},
		{"too long for USSD", nil, strings.Repeat("1", maxInputLen+1), screen},
		{"short code", []string{"1"}, "12345", codeAgain},
		{"long code", []string{"1"}, "1234567", codeAgain},
		{"letters", []string{"1"}, "12345a", codeAgain},
		{"2 at the code", []string{"1"}, "2", codeAgain},
		{"empty at the code", []string{"1"}, "", codeAgain},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := fmt.Sprintf("2547000100%02d", i)
			_, info := p.open(n)
			for _, a := range tc.before {
				p.answer("carrier-a", n, info, a)
			}
			if got := p.answer("carrier-a", n, info, tc.answer); got != tc.want {
				t.Fatalf("answer %q: %q, want %q", tc.answer, got, tc.want)
			}
		})
	}
	wantCalls(t, p.engine.called())
	// Too much at once is no USSD answer: nothing is answered and nothing changes.
	_, info := p.open(alice)
	if reply, _, err := p.HandleSMPP(context.Background(), "carrier-a", alice, OpUSSRConfirm, info, strings.Repeat("1*", maxNewInputs)); reply != "" || err == nil {
		t.Fatalf("%d inputs at once: %q %v", maxNewInputs+1, reply, err)
	}
	wantPrefix(t, p.answer("carrier-a", alice, info, "1"), "CON Enter the code")
}

// The code typed at once on the pushed screen, without 1 first, confirms the request
// just the same (contract section 10: the screen "takes the code just the same").
func TestPushTakesTheCodeAtOnce(t *testing.T) {
	p := newPushMenu(t)
	_, info := p.open(alice)
	wantPrefix(t, p.answer("carrier-a", alice, info, rightCode), "END "+pushID+" confirmed.")
	wantCalls(t, p.engine.called(), "confirm ussd "+alice+" "+pushID+" "+rightCode)
}

// A session answers for the session timeout after its last step; a later answer hears
// that the request ended (the SMS still takes the code), and after twice the timeout
// the session is swept away.
func TestPushExpires(t *testing.T) {
	p := newPushMenu(t)
	_, info := p.open(alice)
	p.h.Clock.Advance(DefaultSessionTimeout - time.Second)
	wantPrefix(t, p.answer("carrier-a", alice, info, "1"), "CON Enter the code")
	p.h.Clock.Advance(DefaultSessionTimeout + time.Second)
	if got := p.answer("carrier-a", alice, info, rightCode); got != "END This request has ended. Reply to our SMS with the code." {
		t.Fatalf("late answer: %q", got)
	}
	wantCalls(t, p.engine.called())

	_, info2 := p.open(bob)
	p.h.Clock.Advance(2*DefaultSessionTimeout + time.Second)
	if n := p.Sweep(); n != 2 || p.Pushes() != 0 {
		t.Fatalf("swept %d, %d left", n, p.Pushes())
	}
	wantPrefix(t, p.answer("carrier-a", bob, info2, "1"), "END This session has ended.")
}

// Opened again before an answer (a submit_sm sent again), a push keeps its session, and
// moves to the link it now goes over; once answered, a new push gets a new session. A
// session number is never one that a session of the number holds, pushed or dialled,
// and a dial with a push's session number ends the push.
func TestPushSessionNumbers(t *testing.T) {
	p := newPushMenu(t)
	_, info := p.open(alice)
	_, again, err := p.OpenPush("carrier-b", alice, pushID, pushText)
	if err != nil || string(again) != string(info) || p.Pushes() != 1 {
		t.Fatalf("opened again: %x (first %x) %v, %d sessions", again, info, err, p.Pushes())
	}
	if reply, _, _ := p.HandleSMPP(context.Background(), "carrier-a", alice, OpUSSRConfirm, info, "1"); strings.HasPrefix(reply, "Enter the code") {
		t.Fatal("the session still takes answers over the link it left")
	}
	wantPrefix(t, p.answer("carrier-b", alice, info, "1"), "CON Enter the code")
	_, answered, _ := p.OpenPush("carrier-b", alice, pushID, pushText)
	if answered[0] == info[0] {
		t.Fatalf("an answered session was opened again: %x", answered)
	}

	// The next number the search would take is held by alice's dialogue: it is skipped.
	next := byte(p.pushSeq.Load() + 1)
	if reply, _, _ := p.HandleSMPP(context.Background(), "carrier-a", alice, OpPSSRIndication, []byte{next, 0}, "*384#"); !strings.HasPrefix(reply, "payswitch") {
		t.Fatalf("dial: %q", reply)
	}
	_, info3, _ := p.OpenPush("carrier-a", alice, "EFGH123456", pushText)
	if info3[0] == next || info3[0] == info[0] || info3[0] == answered[0] {
		t.Fatalf("session number %d, taken already", info3[0])
	}
	// The network reuses a push's session number for a dial: that push is over.
	if reply, _, _ := p.HandleSMPP(context.Background(), "carrier-a", alice, OpPSSRIndication, info3, "*384#"); !strings.HasPrefix(reply, "payswitch") {
		t.Fatalf("dial: %q", reply)
	}
	wantPrefix(t, p.answer("carrier-a", alice, info3, "2"), "CON Enter the merchant code") // the dialogue's menu, not a refusal
	wantCalls(t, p.engine.called())

	for _, bad := range []struct{ link, msisdn, payment, screen string }{
		{"", alice, pushID, pushText}, {"carrier-a", "hello", pushID, pushText}, {"carrier-a", alice, "", pushText},
		{"carrier-a", alice, pushID, " "}, {"carrier-a", alice, pushID, strings.Repeat("x", maxText+1)},
	} {
		if _, _, err := p.OpenPush(bad.link, bad.msisdn, bad.payment, bad.screen); err == nil {
			t.Errorf("OpenPush(%q, %q, %q, %d bytes) opened", bad.link, bad.msisdn, bad.payment, len(bad.screen))
		}
	}
}

func TestPushSessionsCapped(t *testing.T) {
	p := newPushMenu(t)
	var infos [][]byte
	for i := range 10 {
		_, info, err := p.OpenPush("carrier-a", alice, fmt.Sprintf("PAY%07d", i), pushText)
		if err != nil {
			t.Fatal(err)
		}
		infos = append(infos, info)
	}
	if n := p.Pushes(); n != maxPushPerNumber {
		t.Fatalf("%d push sessions of one number, want %d", n, maxPushPerNumber)
	}
	wantPrefix(t, p.answer("carrier-a", alice, infos[9], "1"), "CON Enter the code")
	wantPrefix(t, p.answer("carrier-a", alice, infos[0], "1"), "END This session has ended.")

	const limit = 10
	p.pushes.roster.max = limit
	for i := range 30 {
		p.open(fmt.Sprintf("2547110000%02d", i))
	}
	if n, evicted := p.Pushes(), p.pushes.roster.evicted.Load(); n != limit || evicted != 7+23 {
		t.Fatalf("%d push sessions after 30 more numbers, %d evicted; want %d and 30", n, evicted, limit)
	}
	// The dialogues' table is another: a dial among the pushes is not turned away.
	if scr, err := p.Step(context.Background(), Input{SessionID: "real", Phone: alice}); err != nil || scr.String() != mainScreen {
		t.Fatalf("a dial among pushes: %q %v", scr, err)
	}
	if n := p.Sessions(); n != 1 {
		t.Fatalf("%d dialogues", n)
	}
}

// A screen longer than a USSD message is paged, its options kept together.
func TestPushLongScreenPaged(t *testing.T) {
	p := newPushMenu(t)
	long := "Mama Mboga (55501) asks KES 150.00 for " + strings.Repeat("sugar and flour, ", 12) + "ref ABCD123456.\n1. Pay\n2. Refuse"
	first, info, err := p.OpenPush("carrier-a", alice, pushID, long)
	if err != nil {
		t.Fatal(err)
	}
	checkAnswer(t, "CON "+first)
	if !strings.HasSuffix(first, "\n98. More") || strings.Contains(first, "1. Pay") {
		t.Fatalf("first page %q", first)
	}
	last := p.answer("carrier-a", alice, info, MoreInput)
	if !strings.HasSuffix(last, "ref ABCD123456.\n1. Pay\n2. Refuse") {
		t.Fatalf("last page %q", last)
	}
	wantPrefix(t, p.answer("carrier-a", alice, info, "1"), "CON Enter the code")
}

func TestSplitOptions(t *testing.T) {
	for _, tc := range []struct{ in, body, opts string }{
		{pushText, "Mama Mboga (55501) asks KES 150.00 for Order 7, ref ABCD123456.", "1. Pay\n2. Refuse"},
		{"No options", "No options", ""},
		{"1. Pay\n2. Refuse\n", "", "1. Pay\n2. Refuse"},
		{"Line 1. Here\nand 2. there", "Line 1. Here\nand 2. there", ""},
	} {
		if body, opts := splitOptions(tc.in); body != tc.body || opts != tc.opts {
			t.Errorf("splitOptions(%q) = %q, %q; want %q, %q", tc.in, body, opts, tc.body, tc.opts)
		}
	}
}

// FuzzPushAnswer answers a pushed screen, then its code prompt, with arbitrary text.
// Whatever the text, the answer fits a phone, and the engine hears only of a code of
// the right length after 1, or of a refusal after 2.
func FuzzPushAnswer(f *testing.F) {
	for _, seed := range []string{"", "1", "2", "3", "98", "1*123456", "2*1", "000000", "\xff", strings.Repeat("9", 300), "1*2*3*4*5*6*7*8*9"} {
		f.Add(seed)
	}
	p := newPushMenu(f)
	n := 0
	f.Fuzz(func(t *testing.T, text string) {
		n++
		phone := fmt.Sprintf("25472%07d", n)
		_, info, err := p.OpenPush("carrier-a", phone, pushID, pushText)
		if err != nil {
			t.Fatal(err)
		}
		for _, answer := range []string{text, "1", text} {
			before := len(p.engine.called())
			reply, end, err := p.HandleSMPP(context.Background(), "carrier-a", phone, OpUSSRConfirm, info, answer)
			if err != nil {
				if reply != "" || len(answer) <= maxText && strings.Count(answer, "*") < maxNewInputs {
					t.Fatalf("%q: %q %v", answer, reply, err)
				}
				continue
			}
			checkAnswer(t, Screen{Text: reply, End: end}.String())
			for _, c := range p.engine.called()[before:] {
				f := strings.Fields(c)
				if f[3] != pushID || f[2] != phone || f[0] == "confirm" && (len(f) != 5 || len(f[4]) != 6) {
					t.Fatalf("%q led to the engine call %q", answer, c)
				}
			}
		}
	})
}
