package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// The console's writes of contract sections 11 and 14 through a running switch: a tier
// change reaches the engine (the API reads the new tier; the Changes card reads well;
// the id number is nowhere on the page), and the engine's refusals of a refund, an
// escrow step and a tier are shown as such (422), not as internal errors.
func TestConsoleBusinessWrites(t *testing.T) {
	s := startConsoleSwitch(t)
	w := s.open(map[string]string{"type": "wallet", "msisdn": alice, "name": "Alice"})
	var dep struct{ ID string }
	if c := s.call("POST", "/api/v1/deposits", opsToken, map[string]any{"account": w.ID, "amount": 1000, "reference": "CASH-1"}, &dep); c != 201 {
		t.Fatalf("deposit: %d", c)
	}
	b := s.browser()
	csrf := b.signIn(opsToken)

	const idNumber = "27182818"
	resp, _ := b.post("/console/accounts/"+w.ID+"/tier", url.Values{"csrf": {csrf}, "tier": {"2"}, "id_number": {idNumber}, "reason": {"national id seen"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("tier 2: %d", resp.StatusCode)
	}
	var acc struct{ Tier int }
	s.call("GET", "/api/v1/accounts/"+w.ID, auditToken, nil, &acc)
	if acc.Tier != 2 {
		t.Fatalf("tier %d after the change", acc.Tier)
	}
	_, page := b.get("/console/accounts/" + w.ID + "?done=tier")
	for _, want := range []string{"2 (full KYC)", "KYC tier: 1 (basic) → 2 (full KYC)", "id number: none → on file", "national id seen"} {
		if !strings.Contains(page, want) {
			t.Errorf("account page lacks %q", want)
		}
	}
	if strings.Contains(page, idNumber) {
		t.Fatalf("the account page shows the id number")
	}

	for _, tc := range []struct {
		name, path string
		form       url.Values
		want       string
	}{
		{"the same tier", "/console/accounts/" + w.ID + "/tier", url.Values{"tier": {"2"}, "reason": {"x"}}, "needs the holder"},
		{"a bad id number", "/console/accounts/" + w.ID + "/tier", url.Values{"tier": {"2"}, "id_number": {"12ab"}, "reason": {"x"}}, "5 to 20 digits"},
		{"a deposit refunded", "/console/payments/" + dep.ID + "/refund", url.Values{"amount": {"1"}, "reference": {"RF-1"}}, "cannot be refunded"},
		{"a deposit released", "/console/payments/" + dep.ID + "/escrow", url.Values{"action": {"release"}, "reason": {"x"}}, "not in escrow"},
	} {
		tc.form.Set("csrf", csrf)
		resp, page := b.post(tc.path, tc.form)
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(page, tc.want) {
			t.Errorf("%s: %d, want 422 saying %q\n%s", tc.name, resp.StatusCode, tc.want, page)
		}
	}
}
