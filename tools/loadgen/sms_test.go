package main

import (
	"testing"
	"time"

	payswitch "github.com/payswitch/payswitch/switch"
)

// TestReadSMS reads the switch's own texts, rendered as the engine renders them, so
// that a change of a default text that loadgen relies on fails here.
func TestReadSMS(t *testing.T) {
	x, err := payswitch.NewTexts(nil)
	if err != nil {
		t.Fatal(err)
	}
	vars := func(id string, amount int64, payee string) map[string]string {
		return map[string]string{"id": id, "amount": payswitch.FormatMoney("KES", amount), "payee": payee,
			"minutes": "5", "available": payswitch.FormatMoney("KES", 99_000_000), "balance": payswitch.FormatMoney("KES", 99_000_000),
			"tries": "2", "digits": "6", "shortcode": shortcode, "valid": "10 min"}
	}
	// A request's text, as the engine renders it, for something or not.
	request := func(key, id string, amount int64, payee, code string) string {
		v := vars(id, amount, payee)
		v["what"] = "loadgen order"
		return x.RenderCode(key, v, code, 6)
	}
	tests := []struct {
		name   string
		text   string
		want   sms
		noCode bool // the text is kindOther
	}{
		{
			name: "code SMS",
			text: x.RenderCode("otp", vars("QGL4MPGD85", 15000, "Till 70001 (70001)"), "631530", 6),
			want: sms{kind: kindCode, id: "QGL4MPGD85", code: "631530", amount: 15000, till: "70001"},
		},
		{
			name: "code SMS with digits in the ID, a large amount and a six-digit till",
			text: x.RenderCode("otp", vars("AB12CD34EF", 150_000_050, "Shop (123456)"), "000042", 6),
			want: sms{kind: kindCode, id: "AB12CD34EF", code: "000042", amount: 150_000_050, till: "123456"},
		},
		{
			name: "receipt",
			text: x.Render("receipt", vars("QGL4MPGD85", 15000, "Till 70001 (70001)")),
			want: sms{kind: kindReceipt, id: "QGL4MPGD85"},
		},
		{
			name: "cancelled",
			text: x.Render("cancelled", vars("QGL4MPGD85", 15000, "")),
			want: sms{kind: kindCancelled, id: "QGL4MPGD85"},
		},
		{
			name: "nothing to cancel",
			text: x.Render("no_pending", nil),
			want: sms{kind: kindCancelled},
		},
		{
			name: "another payment waits",
			text: x.Render("pending_exists", vars("QGL4MPGD85", 15000, "Till 70001 (70001)")),
			want: sms{kind: kindPending, id: "QGL4MPGD85"},
		},
		{
			name: "deposit notice",
			text: x.Render("deposit_notice", vars("DEP0000001", 100_000_000, "")),
			want: sms{kind: kindNotice, id: "DEP0000001"},
		},
		{
			name: "request to pay",
			text: request("request", "RQ12ST34UV", 15000, "Till 70001 (70001)", "631530"),
			want: sms{kind: kindRequest, id: "RQ12ST34UV", code: "631530", amount: 15000, till: "70001"},
		},
		{
			name: "request to pay for something, from a six-digit till",
			text: request("request_for", "RQ12ST34UV", 150_000_050, "Shop (123456)", "000042"),
			want: sms{kind: kindRequest, id: "RQ12ST34UV", code: "000042", amount: 150_000_050, till: "123456"},
		},
		{
			name: "request declined",
			text: x.Render("declined", vars("RQ12ST34UV", 15000, "Till 70001 (70001)")),
			want: sms{kind: kindDeclined, id: "RQ12ST34UV"},
		},
		{
			name: "no request to decline",
			text: x.Render("no_request", nil),
			want: sms{kind: kindDeclined},
		},
		{name: "request expired", text: x.Render("request_expired", vars("RQ12ST34UV", 15000, "Till 70001 (70001)")), noCode: true},
		{name: "wrong code", text: x.Render("wrong_code", vars("QGL4MPGD85", 15000, "")), noCode: true},
		{name: "insufficient funds", text: x.Render("insufficient_funds", vars("", 0, "")), noCode: true},
		{name: "unknown merchant", text: x.Render("unknown_merchant", map[string]string{"code": "99999"}), noCode: true},
		{name: "help", text: x.Render("help", vars("", 0, "")), noCode: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := readSMS(tt.text)
			want := tt.want
			if tt.noCode {
				want = sms{kind: kindOther, id: leadingID(tt.text)}
			}
			want.text = tt.text
			if got != want {
				t.Errorf("readSMS(%q)\n got %+v\nwant %+v", tt.text, got, want)
			}
		})
	}
}

func TestFindCode(t *testing.T) {
	tests := []struct {
		name, text string
		want       string
		ok         bool
	}{
		{"one code", "Your code is 631530, valid 5 min.", "631530", true},
		{"code at the end", "code: 000001", "000001", true},
		{"code in parentheses", "code (123456).", "123456", true},
		{"none", "KES 1,500.00 paid to Shop (55501).", "", false},
		{"amount with separators is one number", "KES 123,456.00 and 654321", "654321", true},
		{"seven digits", "1234567", "", false},
		{"inside a word", "ID AB123456CD", "", false},
		{"two codes", "123456 and 654321", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := findCode(tt.text, 6)
			if got != tt.want || ok != tt.ok {
				t.Errorf("findCode(%q) = %q, %v; want %q, %v", tt.text, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one value", ms(7), 99, 7 * time.Millisecond},
		{"median of four is the second", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p99 of 100", ms(hundred...), 99, 99 * time.Millisecond},
		{"p50 of 100", ms(hundred...), 50, 50 * time.Millisecond},
		{"p100", ms(1, 2, 3), 100, 3 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("percentile(%v, %v) = %v, want %v", tt.sorted, tt.p, got, tt.want)
			}
		})
	}
}
