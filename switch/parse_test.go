package payswitch_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	. "github.com/payswitch/payswitch/switch"
)

func TestParseAmount(t *testing.T) {
	cases := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"150", 15000, true},
		{"150.5", 15050, true},
		{"150.50", 15050, true},
		{"0.01", 1, true},
		{"1,500", 150000, true},
		{"1,500.00", 150000, true},
		{"1,234,567.89", 123456789, true},
		{" 20 ", 2000, true},
		{"0", 0, false},
		{"-5", 0, false},
		{"+5", 0, false},
		{"1.234", 0, false},
		{"1.", 0, false},
		{".5", 0, false},
		{"1,50", 0, false},
		{"1500,000", 0, false},
		{",500", 0, false},
		{"1e3", 0, false},
		{"abc", 0, false},
		{"", 0, false},
		{"99999999999999999999", 0, false},
	}
	for _, c := range cases {
		got, err := ParseAmount(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseAmount(%q) = %d, %v; want %d ok=%v", c.in, got, err, c.want, c.ok)
		}
	}
}

// TestParseAmountNeverGuessesGrouping: amounts grouped as the switch reads them (',' between
// thousands, '.' before at most two decimals) are read; digits grouped or split any other
// way are refused as unclear (so the user is told how to write them), never read as
// another amount; anything else is simply invalid.
func TestParseAmountNeverGuessesGrouping(t *testing.T) {
	cases := []struct {
		name, in string
		want     int64
		err      error // nil, ErrUnclearAmount or ErrBadAmount
	}{
		{"plain", "15000", 1500000, nil},
		{"comma groups", "15,000", 1500000, nil},
		{"comma groups and cents", "15,000.50", 1500050, nil},
		{"millions", "1,500,000", 150000000, nil},
		{"one decimal", "150.5", 15050, nil},
		{"dot groups", "15.000", 0, ErrUnclearAmount},
		{"dot groups, comma cents", "1.500,50", 0, ErrUnclearAmount},
		{"comma cents", "15,00", 0, ErrUnclearAmount},
		{"comma one decimal", "1,5", 0, ErrUnclearAmount},
		{"space groups", "15 000", 0, ErrUnclearAmount},
		{"no-break space groups", "15\u00a0000", 0, ErrUnclearAmount},
		{"narrow no-break space groups", "15\u202f000", 0, ErrUnclearAmount},
		{"apostrophe groups", "15'000", 0, ErrUnclearAmount},
		{"uneven comma groups", "1500,000", 0, ErrUnclearAmount},
		{"three decimals", "1.234", 0, ErrUnclearAmount},
		{"trailing dot", "15.", 0, ErrUnclearAmount},
		{"letters", "15k", 0, ErrBadAmount},
		{"sign", "-15", 0, ErrBadAmount},
		{"nothing", "", 0, ErrBadAmount},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseAmount(c.in)
			switch {
			case c.err == nil && (err != nil || got != c.want):
				t.Fatalf("ParseAmount(%q) = %d, %v; want %d", c.in, got, err, c.want)
			case c.err != nil && (!errors.Is(err, c.err) || got != 0):
				t.Fatalf("ParseAmount(%q) = %d, %v; want %v", c.in, got, err, c.err)
			case c.err == ErrBadAmount && errors.Is(err, ErrUnclearAmount):
				t.Fatalf("ParseAmount(%q): %v, want plainly invalid", c.in, err)
			case errors.Is(err, ErrUnclearAmount) && !errors.Is(err, ErrBadAmount):
				t.Fatalf("ParseAmount(%q): an unclear amount must also be ErrBadAmount for USSD and IVR", c.in)
			}
		})
	}
}

// TestSpacedAmountsAreRefused is issue 18: "PAY 55501 15 000" became KES 15.00 with
// reference 000. A word that could continue the amount is refused with a hint, for PAY,
// SEND and TOPUP; amounts written as the switch reads them still go through.
func TestSpacedAmountsAreRefused(t *testing.T) {
	cases := []struct {
		name, in string
		want     Command
	}{
		{"pay spaced thousands", "PAY 55501 15 000", Command{Kind: CmdPay, Problem: ProblemSpacedPay}},
		{"pay spaced millions", "PAY 55501 1 500 000", Command{Kind: CmdPay, Problem: ProblemSpacedPay}},
		{"pay spaced with cents", "PAY 55501 15 000.50", Command{Kind: CmdPay, Problem: ProblemSpacedPay}},
		{"pay no-break space", "PAY 55501 15\u00a0000", Command{Kind: CmdPay, Problem: ProblemSpacedPay}},
		{"pay 3-digit reference", "PAY 55501 150 123", Command{Kind: CmdPay, Problem: ProblemSpacedPay}},
		{"pay spaced then words", "PAY 55501 15 000 rent", Command{Kind: CmdPay, Problem: ProblemSpacedPay}},
		{"pay comma groups", "PAY 55501 15,000", Command{Kind: CmdPay, Merchant: "55501", Amount: 1500000}},
		{"pay comma groups and cents", "PAY 55501 15,000.50 INV7", Command{Kind: CmdPay, Merchant: "55501", Amount: 1500050, Reference: "INV7"}},
		{"pay reference with a letter", "PAY 55501 150 INV123", Command{Kind: CmdPay, Merchant: "55501", Amount: 15000, Reference: "INV123"}},
		{"pay long digit reference", "PAY 55501 150 20261121", Command{Kind: CmdPay, Merchant: "55501", Amount: 15000, Reference: "20261121"}},
		{"pay cents then digits", "PAY 55501 150.50 123", Command{Kind: CmdPay, Merchant: "55501", Amount: 15050, Reference: "123"}},
		{"pay dot groups", "PAY 55501 15.000", Command{Kind: CmdPay, Merchant: "55501", Problem: ProblemUnclearAmount}},
		{"send spaced", "SEND 0712345678 15 000", Command{Kind: CmdSend, Problem: ProblemSpacedSend}},
		{"send spaced number", "SEND 0712 345 678 500", Command{Kind: CmdSend, Problem: ProblemSpacedSend}},
		{"send dot groups", "SEND 0712345678 15.000", Command{Kind: CmdSend, MSISDN: "0712345678", Problem: ProblemUnclearAmount}},
		{"send comma groups", "SEND 0712345678 15,000", Command{Kind: CmdSend, MSISDN: "0712345678", Amount: 1500000}},
		{"topup spaced", "TOPUP 1 500", Command{Kind: CmdTopup, Problem: ProblemSpacedTopup}},
		{"topup spaced for another", "TOPUP 1 500 0712345678", Command{Kind: CmdTopup, Problem: ProblemSpacedTopup}},
		{"topup comma cents", "TOPUP 50,50", Command{Kind: CmdTopup, Problem: ProblemUnclearAmount}},
		{"topup for another", "TOPUP 1,500 0712345678", Command{Kind: CmdTopup, Amount: 150000, MSISDN: "0712345678"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := ParseCommand(c.in, 6); got != c.want {
				t.Fatalf("ParseCommand(%q) = %+v, want %+v", c.in, got, c.want)
			}
		})
	}
}

func TestFormatMoney(t *testing.T) {
	cases := map[int64]string{0: "KES 0.00", 5: "KES 0.05", 15050: "KES 150.50", 150000: "KES 1,500.00",
		123456789: "KES 1,234,567.89", -150000: "KES -1,500.00", 100000000: "KES 1,000,000.00"}
	for in, want := range cases {
		if got := FormatMoney("KES", in); got != want {
			t.Errorf("FormatMoney(%d) = %q, want %q", in, got, want)
		}
	}
}

func TestParseCommand(t *testing.T) {
	cases := []struct {
		name, in string
		want     Command
	}{
		{"pay", "PAY 55501 150", Command{Kind: CmdPay, Merchant: "55501", Amount: 15000}},
		{"pay lower case, spaces", "  pay   55501  150.5 ", Command{Kind: CmdPay, Merchant: "55501", Amount: 15050}},
		{"pay with reference", "Pay 55501 150 INV 42", Command{Kind: CmdPay, Merchant: "55501", Amount: 15000, Reference: "INV 42"}},
		{"pay missing amount", "PAY 55501", Command{Kind: CmdPay, Problem: ProblemUsagePay}},
		{"pay bad amount", "PAY 55501 abc", Command{Kind: CmdPay, Merchant: "55501", Problem: ProblemBadAmount}},
		{"pay letters in till", "PAY MAMA 150", Command{Kind: CmdPay, Problem: ProblemUsagePay}},
		{"pay till too short", "PAY 12 150", Command{Kind: CmdPay, Problem: ProblemUsagePay}},
		{"pay till too long", "PAY 1234567890123 150", Command{Kind: CmdPay, Problem: ProblemUsagePay}},
		{"send", "send 0712345678 500", Command{Kind: CmdSend, MSISDN: "0712345678", Amount: 50000}},
		{"send extra words", "SEND 0712 5 6", Command{Kind: CmdSend, Problem: ProblemUsageSend}},
		{"topup self", "TOPUP 50", Command{Kind: CmdTopup, Amount: 5000}},
		{"topup other", "topup 50 0712345678", Command{Kind: CmdTopup, Amount: 5000, MSISDN: "0712345678"}},
		{"code alone", "482913", Command{Kind: CmdConfirm, Code: "482913"}},
		{"code with leading zero", "012345", Command{Kind: CmdConfirm, Code: "012345"}},
		{"ok code", "ok 482913", Command{Kind: CmdConfirm, Code: "482913"}},
		{"ok nothing", "OK", Command{Kind: CmdConfirm, Problem: ProblemBadCode}},
		{"short digits", "48291", Command{Kind: CmdConfirm, Problem: ProblemBadCode}},
		{"long digits are no code", "48291312345678", Command{Kind: CmdHelp}},
		{"resend", "Resend", Command{Kind: CmdResend}},
		{"cancel", "CANCEL", Command{Kind: CmdCancel}},
		{"bal", "bal", Command{Kind: CmdBalance}},
		{"mini", "MINI", Command{Kind: CmdMini}},
		{"help", "help me", Command{Kind: CmdHelp}},
		{"garbage", "\x00\xff lol", Command{Kind: CmdHelp}},
		{"empty", "   ", Command{Kind: CmdHelp}},
		{"sql", "PAY 55501'; DROP TABLE payments;-- 10", Command{Kind: CmdPay, Problem: ProblemUsagePay}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := ParseCommand(c.in, 6); got != c.want {
				t.Fatalf("ParseCommand(%q) = %+v, want %+v", c.in, got, c.want)
			}
		})
	}
}

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"PAY 55501 150", "SEND 0712345678 1,500.50", "123456", "OK 1", "TOPUP 5 07", "", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c := ParseCommand(s, 6)
		if c.Problem == ProblemNone {
			switch c.Kind {
			case CmdPay, CmdSend, CmdTopup:
				if c.Amount <= 0 {
					t.Fatalf("%q: %s with amount %d", s, c.Kind, c.Amount)
				}
			case CmdConfirm:
				if c.Code == "" {
					t.Fatalf("%q: confirm without a code", s)
				}
			}
		}
		if c.Kind == CmdHelp && (c.Amount != 0 || c.Code != "" || c.Merchant != "") {
			t.Fatalf("%q: help carries data: %+v", s, c)
		}
	})
}

func TestNormalizeMSISDN(t *testing.T) {
	cases := map[string]string{"+254 700 000 001": "254700000001", "0700000001": "254700000001",
		"254700000001": "254700000001", "00254700000001": "254700000001"}
	for in, want := range cases {
		if got, err := NormalizeMSISDN(in, "254"); err != nil || got != want {
			t.Errorf("NormalizeMSISDN(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "12", "07000abc01", "+", "0000000000000000"} {
		if _, err := NormalizeMSISDN(bad, "254"); err == nil {
			t.Errorf("NormalizeMSISDN(%q) accepted", bad)
		}
	}
	if got := Mask("254700000001"); got != "2547****001" {
		t.Errorf("Mask = %q", got)
	}
}

func TestRenderCodeLeavesTheCodeAsTheOnlyRun(t *testing.T) {
	x, err := NewTexts(nil)
	if err != nil {
		t.Fatal(err)
	}
	// A till number as long as the code must not look like a second code.
	vars := map[string]string{"id": "QK3TAB7XYZ", "amount": "KES 1,500.00", "payee": "Duka (123456)", "minutes": "5"}
	msg := x.RenderCode("otp", vars, "048213", 6)
	runs := regexp.MustCompile(`[0-9]+`).FindAllString(msg, -1)
	n := 0
	for _, r := range runs {
		if len(r) == 6 {
			n++
			if r != "048213" {
				t.Fatalf("another 6-digit run %q in %q", r, msg)
			}
		}
	}
	if n != 1 || !strings.Contains(msg, "123 456") {
		t.Fatalf("msg = %q", msg)
	}
	if _, err := NewTexts(map[string]string{"recipt": "x"}); err == nil {
		t.Fatal("unknown message key accepted")
	}
}

func TestStateMachine(t *testing.T) {
	cases := []struct {
		from State
		ev   Event
		to   State
		ok   bool
	}{
		{StatePendingOTP, EvConfirm, StateCompleted, true},
		{StatePendingOTP, EvCancel, StateCancelled, true},
		{StatePendingOTP, EvExpire, StateExpired, true},
		{StatePendingOTP, EvFail, StateFailed, true},
		{StatePendingOTP, EvStartTopup, StateTopupPending, true},
		{StateTopupPending, EvTopupSucceeded, StateCompleted, true},
		{StateTopupPending, EvTopupFailed, StateReversed, true},
		{StateCompleted, EvReverse, StateReversed, true},
		{StateCompleted, EvConfirm, StateCompleted, false},
		{StateCancelled, EvConfirm, StateCancelled, false},
		{StateExpired, EvCancel, StateExpired, false},
		{StateReversed, EvReverse, StateReversed, false},
		{StatePendingOTP, EvReverse, StatePendingOTP, false},
	}
	for _, c := range cases {
		got, err := Next(c.from, c.ev)
		if (err == nil) != c.ok || got != c.to {
			t.Errorf("Next(%s, %s) = %s, %v; want %s ok=%v", c.from, c.ev, got, err, c.to, c.ok)
		}
	}
}
