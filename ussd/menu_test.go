package ussd

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	payswitch "github.com/payswitch/payswitch/switch"
)

const mainScreen = "CON payswitch\n1. Send money\n2. Pay merchant\n3. Buy airtime\n4. My account\n5. Withdraw cash"

func TestDialShowsMainMenu(t *testing.T) {
	h := newHarness(t, nil)
	h.Wallet(alice, 0)
	_, got := h.dial("s1", alice)
	if got != mainScreen {
		t.Fatalf("main menu %q, want %q", got, mainScreen)
	}
}

func TestSendMoneyWithCode(t *testing.T) {
	h := newHarness(t, nil)
	a := h.Wallet(alice, 100000)
	b := h.Wallet(bob, 0)

	g, _ := h.dial("s1", alice)
	wantPrefix(t, g.send("1"), "CON Send money to which number?")
	wantPrefix(t, g.send("0700000002"), "CON Enter the amount in KES")
	got := g.send("250.50")
	wantPrefix(t, got, "CON ")
	wantContains(t, got, "KES 250.50", "W002 2547****002", "Enter the code", "9. New code", "0. Cancel")
	if bal := h.Balance(a.ID); bal.Held != 25050 {
		t.Fatalf("held %d after the request, want 25050", bal.Held)
	}

	got = g.send(h.code(alice))
	wantPrefix(t, got, "END ")
	wantContains(t, got, "confirmed", "KES 250.50", "New balance KES 749.50")
	if bal := h.Balance(b.ID); bal.Posted != 25050 {
		t.Fatalf("bob has %d, want 25050", bal.Posted)
	}
	if p := h.paymentOfType(alice, payswitch.TransferPayment); p.State != payswitch.StateCompleted || p.Channel != payswitch.ChannelUSSD {
		t.Fatalf("transfer %+v", p)
	}
}

func TestPayMerchantInOneGo(t *testing.T) {
	h := newHarness(t, nil)
	h.Wallet(alice, 100000)
	m := h.merchant(till, mama)

	// Users may type several inputs at once; the gateway's text then gains them all.
	g, _ := h.dial("s1", alice)
	got := g.send("2*55501*150")
	wantContains(t, got, "CON ", "KES 150.00", "Mama Mboga (55501)")
	got = g.send(h.code(alice))
	wantPrefix(t, got, "END ")
	wantContains(t, got, "KES 150.00 paid to Mama Mboga (55501)")
	if bal := h.Balance(m.ID); bal.Posted != 15000 {
		t.Fatalf("merchant has %d", bal.Posted)
	}
	if ms := h.Messages(mama, 1000); len(ms) != 1 || ms[0].Purpose != "notice" {
		t.Fatalf("merchant messages %+v", ms)
	}
}

func TestBadInputsAreRetried(t *testing.T) {
	h := newHarness(t, nil)
	a := h.Wallet(alice, 100000)
	h.merchant(till, mama)

	g, _ := h.dial("s1", alice)
	steps := []struct {
		input, want string
	}{
		{"7", "CON Invalid choice.\npayswitch\n1. Send money"},
		{"2", "CON Enter the merchant code"},
		{"55", "CON Merchant codes have 3 to 12 digits.\nEnter the merchant code"},
		{"' OR 1=1; DROP TABLE payments; --", "CON Merchant codes have"},
		{"55599", "CON Enter the amount"},
		{"ten", "CON Invalid amount. Use e.g. 150 or 150.50.\nEnter the amount"},
		{"1.234", "CON Invalid amount."},
		// The engine knows no such merchant: back to the code, then the amount again.
		{"150", "CON There is no merchant 55599."},
		{"55501", "CON Enter the amount"},
		{"0.50", "CON The smallest payment is KES 1.00."},
		{"5000", "CON Insufficient funds: you have KES 1,000.00 available."},
		{"150", "CON "},
	}
	var got string
	for _, s := range steps {
		got = g.send(s.input)
		wantPrefix(t, got, s.want)
	}
	wantContains(t, got, ": pay KES 150.00 to Mama Mboga (55501). Enter the code")
	if bal := h.Balance(a.ID); bal.Held != 15000 {
		t.Fatalf("held %d, want only the last request's 15000", bal.Held)
	}
	wantPrefix(t, g.send("12345"), "CON Codes have 6 digits.\nEnter the code from our SMS.\n9. New code\n0. Cancel")
	wantPrefix(t, g.send(h.code(alice)), "END ")
}

func TestWrongCodeThenRightCode(t *testing.T) {
	h := newHarness(t, nil)
	h.Wallet(alice, 100000)
	h.merchant(till, mama)
	g, _ := h.dial("s1", alice)
	g.send("2*55501*150")
	code := h.code(alice)
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	got := g.send(wrong)
	wantPrefix(t, got, "CON Wrong code for ")
	wantContains(t, got, "2 tries left", "Enter the code from our SMS.", "0. Cancel")
	wantPrefix(t, g.send(code), "END ")
}

func TestTooManyWrongCodesEnds(t *testing.T) {
	h := newHarness(t, nil)
	a := h.Wallet(alice, 100000)
	h.merchant(till, mama)
	g, _ := h.dial("s1", alice)
	g.send("2*55501*150")
	code := h.code(alice)
	var got string
	for _, c := range []string{"000000", "111111", "222222", "333333"} {
		if c == code {
			continue
		}
		got = g.send(c)
		if strings.HasPrefix(got, "END") {
			break
		}
	}
	wantPrefix(t, got, "END ")
	wantContains(t, got, "too many wrong codes")
	if bal := h.Balance(a.ID); bal.Held != 0 {
		t.Fatalf("held %d after the payment failed", bal.Held)
	}
}

func TestCancelOnCodePrompt(t *testing.T) {
	h := newHarness(t, nil)
	a := h.Wallet(alice, 100000)
	h.Wallet(bob, 0)
	g, _ := h.dial("s1", alice)
	g.send("1*0700000002*300")
	got := g.send("0")
	wantPrefix(t, got, "END ")
	wantContains(t, got, "cancelled", "KES 300.00 is available again")
	if bal := h.Balance(a.ID); bal.Held != 0 || bal.Posted != 100000 {
		t.Fatalf("balance %+v after cancel", bal)
	}
}

func TestResendCode(t *testing.T) {
	h := newHarness(t, nil)
	h.Wallet(alice, 100000)
	h.merchant(till, mama)
	g, _ := h.dial("s1", alice)
	g.send("2*55501*150")
	first := h.code(alice)

	wantPrefix(t, g.send("9"), "CON Please wait ")
	h.Clock.Advance(31 * time.Second)
	got := g.send("9")
	wantPrefix(t, got, "CON We sent you a new code for ")
	second := h.code(alice)
	if second == first {
		t.Skip("the new code happens to equal the old one")
	}
	wantPrefix(t, g.send(first), "CON Wrong code")
	wantPrefix(t, g.send(second), "END ")
}

func TestCodeBySMSThenUSSD(t *testing.T) {
	tests := []struct {
		name, next string
	}{
		{"the code again", "<code>"},
		{"cancel", "0"},
		{"new code", "9"},
		{"anything", "hello"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			a := h.Wallet(alice, 100000)
			h.merchant(till, mama)
			g, _ := h.dial("s1", alice)
			g.send("2*55501*150")
			code := h.code(alice)
			if err := h.Engine.HandleSMS(context.Background(), alice, code); err != nil {
				t.Fatal(err)
			}
			next := strings.ReplaceAll(tt.next, "<code>", code)
			got := g.send(next)
			wantPrefix(t, got, "END ")
			wantContains(t, got, "was already confirmed: KES 150.00 paid to Mama Mboga (55501).")
			if bal := h.Balance(a.ID); bal.Posted != 85000 || bal.Held != 0 {
				t.Fatalf("balance %+v: paid once", bal)
			}
		})
	}
}

func TestPendingPaymentFromAnotherSession(t *testing.T) {
	h := newHarness(t, nil)
	h.Wallet(alice, 100000)
	h.merchant(till, mama)
	g1, _ := h.dial("s1", alice)
	g1.send("2*55501*150")
	code := h.code(alice)

	// The first session is dropped; dialling again finds the payment waiting.
	g2, _ := h.dial("s2", alice)
	got := g2.send("2*55501*999")
	wantPrefix(t, got, "CON ")
	wantContains(t, got, "(KES 150.00 to Mama Mboga (55501)) is waiting for its code", "0. Cancel")
	got = g2.send(code)
	wantPrefix(t, got, "END ")
	wantContains(t, got, "KES 150.00 paid")
}

// TestAirtime holds whether or not the engine sells airtime yet: today it refuses with
// its own text; once carriers are configured the code step follows.
func TestAirtime(t *testing.T) {
	tests := []struct {
		name, inputs, number string
	}{
		{"for me", "3*1*50", "2547****001"},
		{"for another number", "3*2*0700000003*50", "2547****003"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			a := h.Wallet(alice, 100000)
			g, _ := h.dial("s1", alice)
			for _, in := range strings.Split(tt.inputs, "*") {
				g.send(in)
			}
			got := g.request()
			if strings.HasPrefix(got, "END ") {
				want := "END Airtime is not available for " + tt.number + " right now. Nothing was paid."
				if got != want {
					t.Fatalf("answer %q, want %q", got, want)
				}
				if bal := h.Balance(a.ID); bal.Held != 0 {
					t.Fatalf("held %d after a refusal", bal.Held)
				}
				return
			}
			wantContains(t, got, "CON ", "KES 50.00", tt.number)
			wantPrefix(t, g.send(h.code(alice)), "END ")
		})
	}
}

func TestAirtimeMenuBackAndBadChoice(t *testing.T) {
	h := newHarness(t, nil)
	h.Wallet(alice, 0)
	g, _ := h.dial("s1", alice)
	wantPrefix(t, g.send("3"), "CON Buy airtime for:\n1. My number\n2. Another number\n0. Back")
	wantPrefix(t, g.send("5"), "CON Invalid choice.\nBuy airtime for:")
	if got := g.send("0"); got != mainScreen {
		t.Fatalf("back gives %q", got)
	}
	wantPrefix(t, g.send("3"), "CON Buy airtime")
	wantPrefix(t, g.send("2"), "CON Buy airtime for which number?")
	wantPrefix(t, g.send("12"), "CON Invalid phone number.")
}

func TestBalanceAndLastPayments(t *testing.T) {
	h := newHarness(t, nil)
	h.Wallet(alice, 100000)
	h.merchant(till, mama)

	g, _ := h.dial("s1", alice)
	wantPrefix(t, g.send("4"), "CON My account\n1. Balance\n2. Last payments\n0. Back")
	if got := g.send("1"); got != "END Balance KES 1,000.00. Available KES 1,000.00." {
		t.Fatalf("balance %q", got)
	}

	g, _ = h.dial("s2", alice)
	g.send("4")
	if got := g.send("2"); !strings.HasPrefix(got, "END Last payments:") || !strings.Contains(got, "deposit") {
		t.Fatalf("one payment %q", got)
	}

	// Five payments do not fit one screen: they come in pages.
	for i := range 4 {
		g, _ := h.dial("p"+string(rune('a'+i)), alice)
		g.send("2*55501*1" + string(rune('0'+i)))
		g.send(h.code(alice))
	}
	mini, err := h.Engine.MiniText(context.Background(), alice)
	if err != nil {
		t.Fatal(err)
	}
	g, _ = h.dial("s3", alice)
	g.send("4")
	page := g.send("2")
	var seen []string
	for strings.HasPrefix(page, "CON ") {
		if !strings.HasSuffix(page, "\n98. More") {
			t.Fatalf("page %q lacks the more option", page)
		}
		seen = append(seen, strings.TrimSuffix(strings.TrimPrefix(page, "CON "), "\n98. More"))
		if again := g.send("5"); again != page {
			t.Fatalf("a stray input shows %q, want the same page", again)
		}
		page = g.send("98")
	}
	wantPrefix(t, page, "END ")
	seen = append(seen, strings.TrimPrefix(page, "END "))
	if len(seen) < 2 {
		t.Fatalf("%d-character statement in one page", len(mini))
	}
	if squash(strings.Join(seen, " ")) != squash(mini) {
		t.Fatalf("pages %q do not add up to %q", seen, mini)
	}
}

func squash(s string) string { return strings.Join(strings.Fields(s), " ") }

func TestRepeatedRequestAnswersTheSame(t *testing.T) {
	h := newHarness(t, nil)
	a := h.Wallet(alice, 100000)
	h.merchant(till, mama)
	g, _ := h.dial("s1", alice)
	first := g.send("2*55501*150")
	if again := g.request(); again != first {
		t.Fatalf("repeat answered %q, want %q", again, first)
	}
	if ps := h.Payments(alice); len(ps) != 2 {
		t.Fatalf("%d payments after a repeated request", len(ps))
	}
	receipt := g.send(h.code(alice))
	if again := g.request(); again != receipt {
		t.Fatalf("repeat after END answered %q, want %q", again, receipt)
	}
	if bal := h.Balance(a.ID); bal.Posted != 85000 {
		t.Fatalf("posted %d: paid once", bal.Posted)
	}
}

func TestIdleSessionIsGone(t *testing.T) {
	h := newHarness(t, nil)
	a := h.Wallet(alice, 100000)
	h.merchant(till, mama)
	g, _ := h.dial("s1", alice)
	g.send("2*55501*150")
	code := h.code(alice)
	h.Clock.Advance(181 * time.Second)

	got := g.send(code)
	if got != "END This session has ended. Please dial *384# again." {
		t.Fatalf("late input %q", got)
	}
	if bal := h.Balance(a.ID); bal.Held != 15000 {
		t.Fatalf("held %d: the payment waits for its code until the engine expires it", bal.Held)
	}
	// The code still works by SMS within its own time.
	if err := h.Engine.HandleSMS(context.Background(), alice, code); err != nil {
		t.Fatal(err)
	}
	if bal := h.Balance(a.ID); bal.Posted != 85000 {
		t.Fatalf("posted %d after the SMS", bal.Posted)
	}
}

func TestSweepDropsOnlyIdleSessions(t *testing.T) {
	h := newHarness(t, nil)
	h.Wallet(alice, 0)
	h.Wallet(bob, 0)
	h.dial("old", alice)
	h.Clock.Advance(100 * time.Second)
	h.dial("new", bob)
	h.Clock.Advance(100 * time.Second)
	if n := h.menu.Sweep(); n != 1 {
		t.Fatalf("swept %d sessions, want 1", n)
	}
	if n := h.menu.Sessions(); n != 1 {
		t.Fatalf("%d sessions left, want 1", n)
	}
}

func TestTextsOverride(t *testing.T) {
	h := newHarness(t, map[string]string{"title": "Karibu payswitch", "menu": "1. Tuma pesa\n2. Lipa\n3. Airtime\n4. Akaunti"})
	h.Wallet(alice, 0)
	_, got := h.dial("s1", alice)
	if got != "CON Karibu payswitch\n1. Tuma pesa\n2. Lipa\n3. Airtime\n4. Akaunti" {
		t.Fatalf("overridden menu %q", got)
	}

	tests := []struct {
		name  string
		texts map[string]string
		want  string
	}{
		{"unknown key", map[string]string{"titel": "x"}, "unknown keys: titel"},
		{"empty", map[string]string{"title": "  "}, "messages.title"},
		{"more too long", map[string]string{"more": strings.Repeat("m", 41)}, "messages.more"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(h.Engine, Config{Texts: tt.texts})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one naming %q", err, tt.want)
			}
		})
	}
}

func TestLongScreensArePaged(t *testing.T) {
	title := strings.Repeat("Welcome to the people's payment switch. ", 6)
	h := newHarness(t, map[string]string{"title": title})
	h.Wallet(alice, 0)
	h.Wallet(bob, 0)
	g, got := h.dial("s1", alice)
	wantPrefix(t, got, "CON Welcome")
	if !strings.HasSuffix(got, "\n98. More") {
		t.Fatalf("first page %q", got)
	}
	got = g.send("98")
	wantContains(t, got, "1. Send money", "4. My account")
	// The options are on the last page; an answer keyed on an earlier one is taken too.
	g2, _ := h.dial("s2", bob)
	wantPrefix(t, g2.send("4"), "CON My account")
}

func TestStepRefusesBadRequests(t *testing.T) {
	h := newHarness(t, nil)
	tests := []struct {
		name string
		in   Input
	}{
		{"no session", Input{Phone: alice}},
		{"no phone", Input{SessionID: "x"}},
		{"not a phone", Input{SessionID: "x", Phone: "alice"}},
		{"long session id", Input{SessionID: strings.Repeat("x", 200), Phone: alice}},
		{"huge text", Input{SessionID: "x", Phone: alice, Text: strings.Repeat("1", 10<<10)}},
		{"many inputs", Input{SessionID: "x", Phone: alice, Text: strings.Repeat("1*", 100)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := h.menu.Step(context.Background(), tt.in); !errors.Is(err, ErrBadRequest) {
				t.Fatalf("error %v, want ErrBadRequest", err)
			}
			if n := h.menu.Sessions(); n != 0 {
				t.Fatalf("%d sessions after a bad request", n)
			}
		})
	}
}

func TestEngineFailureEndsWithApology(t *testing.T) {
	h := newHarness(t, nil)
	h.Wallet(alice, 100000)
	g, _ := h.dial("s1", alice)
	g.send("4")
	h.DB.Close()
	scr, err := h.menu.Step(context.Background(), Input{SessionID: "http:s1", Phone: alice, Text: "4*1"})
	if err == nil || !scr.End || !strings.HasPrefix(scr.Text, "Sorry") {
		t.Fatalf("screen %+v, error %v", scr, err)
	}
}

func TestConcurrentDialogues(t *testing.T) {
	h := newHarness(t, nil)
	h.merchant(till, mama)
	const callers = 12
	phones := make([]string, callers)
	for i := range phones {
		phones[i] = "25471100" + string(rune('0'+i/10)) + string(rune('0'+i%10)) + "00"
		h.Wallet(phones[i], 100000)
	}
	ctx := context.Background()
	errs := make(chan error, callers*3)
	for _, phone := range phones {
		sid := "c" + phone
		go func() {
			// A dialogue to a payment request, with every request sent twice at once as
			// an impatient gateway might.
			for _, text := range []string{"", "2", "2*55501", "2*55501*10"} {
				done := make(chan error, 2)
				for range 2 {
					go func() {
						scr, err := h.menu.Step(ctx, Input{SessionID: sid, Phone: phone, Text: text})
						if err == nil && scr.End {
							err = errors.New("ended: " + scr.Text)
						}
						done <- err
					}()
				}
				for range 2 {
					if err := <-done; err != nil {
						errs <- err
						return
					}
				}
			}
			errs <- nil
		}()
	}
	for range callers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for _, phone := range phones {
		ps := h.Payments(phone)
		if len(ps) != 2 {
			t.Fatalf("%s has %d payments, want the deposit and one request", phone, len(ps))
		}
	}
}
