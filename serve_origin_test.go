package main

import (
	"net/http"
	"strings"
	"testing"
)

// Attack: a gateway callback names any number, so forged USSD sessions once entered
// wrong codes for alice until her number was locked, and could do it again every hour.
// Through the real switch: one callback source counts at most
// fraud.wrong_codes_per_origin wrong codes against her (here the default, lock - 1), its
// further entries are refused unchecked, and her own SMS reply still confirms and pays.
func TestForgedCallbacksCannotLockANumber(t *testing.T) {
	s := startSwitchWith(t, "5m", "fraud: {wrong_codes_lock: 3, lock_window: 24h, lock_duration: 1h}\n")
	w := s.open(map[string]string{"type": "wallet", "msisdn": alice, "name": "Alice"})
	s.open(map[string]string{"type": "merchant", "code": "55501", "name": "Mama Mboga"})
	a := s.phone(alice)
	s.deposit(w.ID, 100000, "CASHIN-1")
	a.expect("deposited")

	step := func(session, text string) string {
		t.Helper()
		code, body := post(t, s.base, "/ussd", ussdForm(session, text), nil)
		if code != http.StatusOK {
			t.Fatalf("ussd %q: %d %q", text, code, body)
		}
		return body
	}
	for _, text := range ussdPay {
		step("F1", text)
	}
	code := codeIn(t, a.expect("KES 150.00"))
	wrong := "000000"
	if code == wrong {
		wrong = "999999"
	}
	// Two wrong codes count; the third and every later one is refused unchecked, so
	// neither the payment's tries nor the number's lock run out.
	for i := range 5 {
		got := step("F1", strings.Join(append(ussdPay[3:], strings.Repeat("*"+wrong, i+1)), ""))
		if strings.Contains(strings.ToLower(got), "locked") {
			t.Fatalf("wrong code %d through the callback locked the number: %q", i+1, got)
		}
	}
	a.send(code)
	a.expectEventually("KES 150.00", "Mama Mboga")
	s.expectBalance(w.ID, 100000-15000, 0)

	// The next payment is not locked either, and the forger's source gets no guesses.
	a.send("PAY 55501 100")
	code = codeIn(t, a.expectEventually("KES 100.00"))
	a.send(code)
	a.expectEventually("KES 100.00", "Mama Mboga")
	s.expectBalance(w.ID, 100000-25000, 0)
}
