package payswitch_test

import (
	"strings"
	"testing"

	. "github.com/payswitch/payswitch/switch"
)

// HELP is one SMS that names every command a payer starts something with; HELP 2 is a
// second one about codes and merchants' requests; HELP <command> is that command's usage.
func TestHelpTopicsParse(t *testing.T) {
	for in, want := range map[string]Command{
		"HELP":         {Kind: CmdHelp},
		"help me":      {Kind: CmdHelp},
		"HELP 2":       {Kind: CmdHelp, Problem: ProblemHelpMore},
		"help more":    {Kind: CmdHelp, Problem: ProblemHelpMore},
		"Help No":      {Kind: CmdHelp, Problem: ProblemHelpMore},
		"HELP cancel":  {Kind: CmdHelp, Problem: ProblemHelpMore},
		"HELP pay":     {Kind: CmdHelp, Problem: ProblemUsagePay},
		"HELP BUY":     {Kind: CmdHelp, Problem: ProblemUsageBuy},
		"HELP send":    {Kind: CmdHelp, Problem: ProblemUsageSend},
		"HELP TOPUP":   {Kind: CmdHelp, Problem: ProblemUsageTopup},
		"HELP STOP":    {Kind: CmdHelp, Problem: ProblemUsageStop},
		"HELP start":   {Kind: CmdHelp, Problem: ProblemUsageStop},
		"HELP bal":     {Kind: CmdHelp},
		"HELP PAY BUY": {Kind: CmdHelp},
	} {
		if got := ParseCommand(in, 6); got != want {
			t.Errorf("ParseCommand(%q) = %+v, want %+v", in, got, want)
		}
	}
}

func TestHelpAnswers(t *testing.T) {
	h := newHarness(t)
	w := h.wallet(alice, 100000)
	cases := []struct {
		text  string
		wants []string
	}{
		{"HELP", []string{"22333:", "PAY <till> <amount>", "BUY <till> <item> [qty]", "SEND", "TOPUP", "BAL", "MINI",
			"CANCEL", "NO", "STOP <till>", "HELP 2"}},
		{"what?", []string{"22333:", "BUY <till>", "HELP 2"}},
		{"HELP 2", []string{"22333:", "code", "RESEND", "CANCEL", "NO refuses", "STOP <till>", "START <till>", "LOCK."}},
		{"HELP BUY", []string{"BUY <till> <product> [quantity]"}},
		{"HELP STOP", []string{"STOP <till>", "START <till>"}},
		{"HELP PAY", []string{"PAY <till> <amount> [reference]"}},
		{"HELP RELEASE", []string{"RELEASE <payment id>", "DISPUTE <payment id>"}},
		{"HELP LOCK", []string{"LOCK <wallet number> <id number>"}},
	}
	for _, c := range cases {
		before := h.count(alice)
		h.sms(alice, c.text)
		if h.count(alice) != before+1 {
			t.Fatalf("%q: want exactly one answer", c.text)
		}
		m := h.last(alice)
		for _, want := range c.wants {
			if !strings.Contains(m.Text, want) {
				t.Errorf("%q answered %q, which lacks %q", c.text, m.Text, want)
			}
		}
		if n, ok := septets(m.Text); !ok || n > 160 {
			t.Errorf("%q answered %d septets (GSM %v): %q", c.text, n, ok, m.Text)
		}
	}
	if b := h.balance(w.ID); b.Held != 0 || b.Posted != 100000 {
		t.Fatalf("help moved money: %+v", b)
	}
}

// Every keyword a payer can send is named by one of the two help pages.
func TestHelpNamesEveryCommand(t *testing.T) {
	x, err := NewTexts(nil)
	if err != nil {
		t.Fatal(err)
	}
	both := x.Render("help", typicalVars) + " " + x.Render("help_more", typicalVars)
	for _, kw := range []string{"PAY", "BUY", "SEND", "TOPUP", "BAL", "MINI", "RESEND", "CANCEL", "NO", "STOP", "START", "RELEASE", "DISPUTE", "WITHDRAW", "LOCK"} {
		if !strings.Contains(both, kw+" ") && !strings.Contains(both, kw+",") && !strings.Contains(both, kw+".") {
			t.Errorf("no help page names %s: %q", kw, both)
		}
	}
}
