package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/payswitch/payswitch/tools/smscsim"
)

// TestCrashTest runs two rounds of ten phones against a real switch process, with a
// SIGKILL in each, and every check of the long run.
func TestCrashTest(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a real switch; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// The default -receipt-wait (15 s) holds since serve releases a crashed
	// predecessor's outbox claims at start.
	args := []string{"-rounds", "2", "-phones", "10", "-seed", "20251121", "-ttl", "5s"}
	if raceEnabled {
		// Shares the build cache with the rest of `go test -race ./...`, and a race in
		// the switch under kills fails the test.
		args = append(args, "-race")
	}
	var stdout, stderr bytes.Buffer
	err := run(ctx, args, &stdout, &stderr)
	t.Logf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	if err != nil {
		t.Fatal(err)
	}
	out := stdout.String()
	for _, want := range []*regexp.Regexp{
		// One kill a round, and perhaps one more while the switch recovers.
		regexp.MustCompile(`(?m)^round=1 kills=[12] .* ok$`),
		regexp.MustCompile(`(?m)^round=2 kills=[12] .* ok$`),
		regexp.MustCompile(`(?m)^crashtest: ok seed=20251121 rounds=2 kills=[2-4] recovery_kills=[0-2] payments=[1-9]\d* completed=[1-9]\d* .* pending=0 `),
	} {
		if !want.MatchString(out) {
			t.Errorf("output lacks %s", want)
		}
	}
}

// TestCrashTestDiskLoss is the disk-loss story through real processes: serve streams to
// a file replica under payments, is killed, loses its data folder, is restored from the
// replica and started again; the books balance, export and verify pass, and every
// payment acknowledged more than the documented lag before the kill is there, once.
func TestCrashTestDiskLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a real switch; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	args := []string{"-disk-loss", "-rounds", "2", "-phones", "6", "-seed", "20261206", "-ttl", "5s"}
	if raceEnabled {
		args = append(args, "-race")
	}
	var stdout, stderr bytes.Buffer
	err := run(ctx, args, &stdout, &stderr)
	t.Logf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	if err != nil {
		t.Fatal(err)
	}
	out := stdout.String()
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^round=1 disk-loss .* acked_before_cutoff=[1-9]\d* .* ok$`),
		regexp.MustCompile(`(?m)^round=2 disk-loss .* acked_before_cutoff=[1-9]\d* .* ok$`),
		regexp.MustCompile(`(?m)^crashtest: ok disk-loss seed=20261206 rounds=2 `),
	} {
		if !want.MatchString(out) {
			t.Errorf("output lacks %s", want)
		}
	}
}

func TestFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		ok   bool
	}{
		{"defaults", nil, true},
		{"long run", []string{"-rounds", "200", "-phones", "20", "-seed", "7"}, true},
		{"no rounds", []string{"-rounds", "0"}, false},
		{"too many phones", []string{"-phones", "1000"}, false},
		{"ttl too short", []string{"-ttl", "10ms"}, false},
		{"stray argument", []string{"extra"}, false},
		{"disk loss", []string{"-disk-loss", "-replica-sync", "500ms"}, true},
		{"no replica sync", []string{"-disk-loss", "-replica-sync", "0s"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseFlags(tt.args, &bytes.Buffer{})
			if (err == nil) != tt.ok {
				t.Fatalf("parseFlags(%q) = %v, want ok %v", tt.args, err, tt.ok)
			}
			if err == nil && o.seed == 0 {
				t.Error("seed 0 not replaced by a random one")
			}
		})
	}
}

func TestOTPOf(t *testing.T) {
	tests := []struct {
		name, text string
		id, code   string
		ok         bool
	}{
		{"switch's text", "QGL4MPGD85: pay KES 150.00 to Mama Mboga (55501)? Your code is 631530, valid 5 min. Reply with the code to confirm. Never share this code with anyone.",
			"QGL4MPGD85", "631530", true},
		{"large amount is one number", "QGL4MPGD85: pay KES 123,456.00 to Shop (55501)? Your code is 000123, valid 1 min.",
			"QGL4MPGD85", "000123", true},
		{"six-digit till defused", "QGL4MPGD85: pay KES 10.50 to Shop (555 001)? Your code is 987654, valid 1 min.",
			"QGL4MPGD85", "987654", true},
		{"digits inside a word do not count", "AB123456CD: pay KES 10.00 to X123456 (55501)? Your code is 111111.",
			"AB123456CD", "111111", true},
		{"two candidate codes", "QGL4MPGD85: pay KES 10.00 to 222222? Your code is 111111.", "", "", false},
		{"receipt", "QGL4MPGD85 confirmed. KES 150.00 paid to Mama Mboga (55501). New balance KES 850.00.", "", "", false},
		{"no code", "QGL4MPGD85: pay KES 150.00 to Mama Mboga (55501)?", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, code, ok := otpOf(tt.text, 6)
			if id != tt.id || code != tt.code || ok != tt.ok {
				t.Errorf("otpOf = %q, %q, %v; want %q, %q, %v", id, code, ok, tt.id, tt.code, tt.ok)
			}
		})
	}
}

func TestFinalFor(t *testing.T) {
	const id = "QGL4MPGD85"
	tests := []struct {
		text, state string
	}{
		{id + " confirmed. KES 150.00 paid to Shop (55501). New balance KES 850.00.", "completed"},
		{id + " cancelled. KES 150.00 is available again. Balance KES 1,000.00.", "cancelled"},
		{id + " failed: too many wrong codes. KES 150.00 is available again.", "failed"},
		{id + " expired: the code was not entered in time. KES 150.00 is available again.", "expired"},
		{"The code for " + id + " has expired. KES 150.00 is available again.", "expired"},
		{"OTHER00001 confirmed. KES 150.00 paid to Shop (55501). New balance KES 850.00.", ""},
		{"Wrong code for " + id + ". 2 tries left.", ""},
		{textNoPending, ""},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			state, ok := finalFor(tt.text, id)
			if state != tt.state || ok != (tt.state != "") {
				t.Errorf("finalFor = %q, %v; want %q", state, ok, tt.state)
			}
		})
	}
}

func TestScriptKeepsWrongCodesUnderTheLock(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	kinds := map[behaviour]int{}
	for range 2000 {
		s := newScript(rng, 6)
		wrongs := 0
		for i, st := range s {
			kinds[st.do]++
			switch st.do {
			case wrongThenConfirm:
				wrongs++
			case exhaust:
				wrongs += maxAttempts
			case silent:
				if i != len(s)-1 {
					t.Fatalf("silent step %d of %d: it would block the rest", i, len(s))
				}
			}
			if st.amount < 1000 || st.amount%50 != 0 {
				t.Fatalf("amount %d", st.amount)
			}
		}
		if wrongs > 3 {
			t.Fatalf("script %v sends %d wrong codes", s, wrongs)
		}
	}
	for b := confirm; b <= silent; b++ {
		if kinds[b] == 0 {
			t.Errorf("no %s step in 2000 scripts", b)
		}
	}
}

func TestAmountText(t *testing.T) {
	for minor, want := range map[int64]string{15000: "150", 15050: "150.50", 1005: "10.05"} {
		if got := amountText(minor); got != want {
			t.Errorf("amountText(%d) = %q, want %q", minor, got, want)
		}
	}
	if got := wrongCode("019999"); got != "120000" {
		t.Errorf("wrongCode = %q", got)
	}
}

// TestCheckWallet shows that the checks catch what they are for: each broken case
// must name its invariant.
func TestCheckWallet(t *testing.T) {
	m := &merchant{code: "50001", account: "M1"}
	newPhone := func() *phone {
		p := &phone{msisdn: "254700001000", account: "W1", deposit: 100000, ref: "CASHIN-1", merchant: m,
			byID: map[string]*attempt{}}
		for _, a := range []*attempt{
			{step: step{amount: 15000}, id: "PAID000001", sentRight: true},
			{step: step{amount: 2000}, id: "WAIT000001"},
			{step: step{amount: 3000}, id: "GONE000001"},
		} {
			p.attempts = append(p.attempts, a)
			p.byID[a.id] = a
		}
		return p
	}
	dep := payment{ID: "DEPO000001", Type: "deposit", State: "completed", Payer: "cash:KES", Payee: "W1", Amount: 100000}
	paid := payment{ID: "PAID000001", Type: "merchant_payment", State: "completed", Payer: "W1", Payee: "M1", Amount: 15000}
	wait := payment{ID: "WAIT000001", Type: "merchant_payment", State: "pending_otp", Payer: "W1", Payee: "M1", Amount: 2000}
	gone := payment{ID: "GONE000001", Type: "merchant_payment", State: "expired", Payer: "W1", Payee: "M1", Amount: 3000}
	good := walletView{acct: account{ID: "W1", Balance: balance{Posted: 85000, Held: 2000, Available: 83000}},
		pays: []payment{wait, gone, paid, dep}}

	tests := []struct {
		name   string
		change func(p *phone, v *walletView)
		want   string // invariant; "" = no violation
	}{
		{"consistent", func(*phone, *walletView) {}, ""},
		{"debited twice", func(_ *phone, v *walletView) { v.acct.Balance.Posted, v.acct.Balance.Available = 70000, 68000 }, invExactlyOnce},
		{"debit lost", func(_ *phone, v *walletView) { v.acct.Balance.Posted, v.acct.Balance.Available = 100000, 98000 }, invExactlyOnce},
		{"hold not released", func(_ *phone, v *walletView) { v.acct.Balance.Held, v.acct.Balance.Available = 5000, 80000 }, invHolds},
		{"hold missing", func(_ *phone, v *walletView) { v.acct.Balance.Held, v.acct.Balance.Available = 0, 85000 }, invHolds},
		{"unknown state", func(_ *phone, v *walletView) { v.pays[1].State = "limbo" }, invStates},
		{"reversed", func(_ *phone, v *walletView) { v.pays[2].State = "reversed" }, invStates},
		{"two waiting", func(_ *phone, v *walletView) {
			v.pays[1].State = "pending_otp"
			v.acct.Balance.Held, v.acct.Balance.Available = 5000, 80000
		}, invStates},
		{"completed without its code", func(p *phone, _ *walletView) { p.byID["PAID000001"].sentRight = false }, invExactlyOnce},
		{"unasked payment completed", func(p *phone, v *walletView) {
			v.pays[1].State = "completed"
			v.acct.Balance = balance{Posted: 82000, Held: 2000, Available: 80000}
		}, invExactlyOnce},
		{"other amount", func(_ *phone, v *walletView) { v.pays[1].Amount = 3001 }, invExactlyOnce},
		{"deposit credited twice", func(_ *phone, v *walletView) {
			d := dep
			d.ID = "DEPO000002"
			v.pays = append(v.pays, d)
			v.acct.Balance = balance{Posted: 185000, Held: 2000, Available: 183000}
		}, invDeposits},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPhone()
			v := good
			v.pays = slices.Clone(good.pays)
			tt.change(p, &v)
			err := checkWallet(p, v)
			var vio *violation
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("checkWallet: %v", err)
			case tt.want != "" && !errors.As(err, &vio):
				t.Fatalf("checkWallet = %v, want a violation of %q", err, tt.want)
			case tt.want != "" && vio.invariant != tt.want:
				t.Fatalf("checkWallet = %v, want a violation of %q", err, tt.want)
			}
		})
	}

	t.Run("merchant", func(t *testing.T) {
		p := newPhone()
		m.phones = []*phone{p}
		views := map[*phone]walletView{p: good}
		if err := checkMerchant(m, account{ID: "M1", Balance: balance{Posted: 15000, Available: 15000}}, views); err != nil {
			t.Errorf("consistent merchant: %v", err)
		}
		err := checkMerchant(m, account{ID: "M1", Balance: balance{Posted: 30000, Available: 30000}}, views)
		if !strings.Contains(fmt.Sprint(err), invExactlyOnce) {
			t.Errorf("merchant paid twice: %v", err)
		}
	})

	t.Run("unmoved", func(t *testing.T) {
		p := newPhone()
		after := good
		after.pays = slices.Clone(good.pays)
		after.pays[0].State = "expired" // time passes: allowed
		if err := checkUnmoved(p, good, after, "replay"); err != nil {
			t.Errorf("expiry after a replay: %v", err)
		}
		after.pays[0].State = "completed"
		after.acct.Balance.Posted -= 2000
		if err := checkUnmoved(p, good, after, "replay"); !strings.Contains(fmt.Sprint(err), invCodeOnce) {
			t.Errorf("a replayed code completed a payment: %v", err)
		}
	})
}

func TestMailboxes(t *testing.T) {
	m := newMailboxes()
	ch := make(chan smscsim.MT)
	done := make(chan struct{})
	go func() { m.collect(ch); close(done) }()
	const a, b = "254700000001", "254700000002"
	for _, mt := range []smscsim.MT{
		{To: a, Text: "QGL4MPGD85: pay KES 150.00 to Shop (55501)? Your code is 631530, valid 1 min."},
		{To: a, Text: textNoPending},
		{To: a, Text: "QGL4MPGD85 confirmed. KES 150.00 paid to Shop (55501). New balance KES 850.00."},
		{To: a, Text: textNoPending}, // not about a payment: not counted as a copy
		{To: a, Text: "QGL4MPGD85 confirmed. KES 150.00 paid to Shop (55501). New balance KES 850.00."},
		{To: b, Text: "QGL4MPGD85: you have received KES 150.00 from 2547****001. New balance KES 150.00."},
	} {
		ch <- mt
	}
	close(ch)
	<-done

	if n := m.duplicates(); n != 1 {
		t.Errorf("duplicates = %d, want 1", n)
	}
	if !m.has(b, func(s string) bool { return isNotice(s, "QGL4MPGD85") }) {
		t.Error("notice not found")
	}
	ctx := context.Background()
	text, next, err := m.await(ctx, a, 1, time.Second, func(s string) bool { return isReceipt(s, "QGL4MPGD85") })
	if err != nil || next != 3 || !strings.HasPrefix(text, "QGL4MPGD85 confirmed.") {
		t.Errorf("await = %q, %d, %v; want the receipt at 3", text, next, err)
	}
	if _, _, err := m.await(ctx, a, 5, 10*time.Millisecond, func(string) bool { return true }); !errors.Is(err, errNoAnswer) {
		t.Errorf("await of nothing = %v, want errNoAnswer", err)
	}
	// The receipt at 4 is a copy of the one at 2 (the replay's mark was 3); the one at 2
	// is new to a phone whose mark was 2.
	receipt := "QGL4MPGD85 confirmed. KES 150.00 paid to Shop (55501). New balance KES 850.00."
	if !m.hadBefore(a, 3, receipt) {
		t.Error("hadBefore(mark 3) = false for the receipt at 2")
	}
	if m.hadBefore(a, 2, receipt) || m.hadBefore(b, 9, receipt) {
		t.Error("hadBefore is true for a text not there before the mark")
	}
	if h := m.history(a); strings.Count(h, "\n") != 5 || !strings.Contains(h, `4 `) {
		t.Errorf("history = %s; want the 5 MTs numbered", h)
	}
}
