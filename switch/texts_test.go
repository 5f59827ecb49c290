package payswitch_test

import (
	"sort"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/payswitch/payswitch/smpp"

	. "github.com/payswitch/payswitch/switch"
)

// septets is the length of text in the GSM 7-bit default alphabet: one septet a
// character, two for those of the extension table; ok is false when text does not fit
// that alphabet at all (it would go as UCS-2, 70 characters an SMS).
func septets(text string) (n int, ok bool) {
	if !smpp.GSMFits(text) {
		return 0, false
	}
	return utf8.RuneCountInString(text) + strings.Count(text, "[") + strings.Count(text, "]") +
		strings.Count(text, "{") + strings.Count(text, "}") + strings.Count(text, "\\") +
		strings.Count(text, "^") + strings.Count(text, "~") + strings.Count(text, "|") +
		strings.Count(text, "€") + strings.Count(text, "\f"), true
}

func TestSeptets(t *testing.T) {
	for in, want := range map[string]int{"abc": 3, "[x]": 5, "€1": 3, "a\\b|c~d^e{f}": 18, "": 0} {
		if got, ok := septets(in); !ok || got != want {
			t.Errorf("septets(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
	if _, ok := septets("ŝ"); ok {
		t.Error("ŝ fits GSM 7-bit?")
	}
}

// typicalVars are the values a text may be rendered with, on the long side of typical:
// the largest payment's amount, a 20-character name with a number, a lock ending another
// day.
var typicalVars = map[string]string{
	"id": "AUJCTUBFCH", "amount": "KES 150,000.00", "balance": "KES 150,000.00",
	"available": "KES 150,000.00", "limit": "KES 300,000.00", "left": "KES 150,000.00",
	"min": "KES 10.00", "max": "KES 150,000.00", "payee": "Mwanaisha Wholesaler 2547****002",
	"payer": "2547****001", "number": "2547****002", "minutes": "5", "seconds": "30", "tries": "2",
	"digits": "6", "shortcode": "22333", "code": "55501", "until": "17:13 EAT on 07/12",
	"reason": "number barred",
	// Requests to pay and products: a short description (a long one, or many items,
	// takes a second part), a BUY's one item, a request's validity, a product code of
	// the longest.
	"valid": "1 h 30 min", "what": "Order 7", "items": "2 x Sugar 1kg",
	"product": "123456", "other": "AUJCTUBFCK", "other_tries": "2", "count": "100",
	"release": "14/06/2026 15:04 EAT",
	// SALES: a busy day of a store.
	"day": "06/12", "where": "Mwanaisha Wholesaler - Westlands", "payments": "1234",
	"gross": "KES 1,500,000.00", "refunds": "KES 150,000.00", "net": "KES 1,350,000.00",
	// The tariff (contract section 14): a fee of the top band.
	"fee": "KES 309.00", "total": "KES 150,309.00",
	"cap": "KES 500,000.00", // a tier's max_balance
}

// codeTexts are the texts that carry a one-time code (RenderCode): the placeholder
// {code} of the others is a merchant's code.
var codeTexts = map[string]bool{"otp": true, "otp_resent": true, "otp_buy": true,
	"request": true, "request_for": true, "request_airtime": true,
	"otp_fee": true, "otp_buy_fee": true, "otp_resent_fee": true, "request_fee": true, "request_for_fee": true,
	"otp_withdraw": true, "otp_withdraw_fee": true}

// TestEveryTextFitsOneSMS: every built-in SMS text is one SMS in GSM 7-bit, 160 septets,
// rendered with typical values, so that no answer costs the user (or the switch) two
// messages or falls back to UCS-2 (70 characters). A new text is measured as soon as it
// is added to DefaultTexts.
func TestEveryTextFitsOneSMS(t *testing.T) {
	x, err := NewTexts(nil)
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(DefaultTexts))
	for k := range DefaultTexts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		text := x.Render(k, typicalVars)
		if codeTexts[k] {
			text = x.RenderCode(k, typicalVars, "123456", 6)
		}
		if p := placeholder(text); p != "" {
			t.Errorf("%s: %s has no typical value in this test: %q", k, p, text)
			continue
		}
		n, ok := septets(text)
		switch {
		case !ok:
			t.Errorf("%s is not GSM 7-bit: %q", k, text)
		case n > 160:
			t.Errorf("%s is %d septets, more than one SMS: %q", k, n, text)
		default:
			t.Logf("%-20s %3d septets", k, n)
		}
	}
}

// placeholder is the first {name} left in text, or "".
func placeholder(text string) string {
	i := strings.Index(text, "{")
	if i < 0 {
		return ""
	}
	j := strings.Index(text[i:], "}")
	if j < 0 {
		return ""
	}
	return text[i : i+j+1]
}

// TestCountsAgree: a count of one takes the singular: the last try is "1 try left",
// never "1 tries left".
func TestCountsAgree(t *testing.T) {
	h := newHarness(t)
	h.wallet(alice, 100000)
	h.merchant("55501", mama)
	h.sms(alice, "PAY 55501 10")
	c := h.code(alice)
	for _, want := range []string{"2 tries left.", "1 try left."} {
		h.sms(alice, wrongCode(c))
		if txt := h.last(alice).Text; !strings.HasSuffix(txt, want) {
			t.Fatalf("wrong code answered %q, want %q", txt, want)
		}
	}
}
