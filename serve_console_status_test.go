package main

import (
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestConsoleAccountHistory freezes and reactivates from the console: the engine records
// the signed-in token's name and the reason, and the account page lists the changes,
// newest first, with the reason rendered as text; a change to the status the account
// already has is refused with the reason.
func TestConsoleAccountHistory(t *testing.T) {
	s := startConsoleSwitch(t)
	acc := s.open(map[string]string{"type": "wallet", "msisdn": alice, "name": "Alice"})
	const evilReason = `<b onmouseover="alert(3)">stolen</b> & co`
	b := s.browser()
	csrf := b.signIn(opsToken)
	path := "/console/accounts/" + acc.ID
	if resp, page := b.post(path+"/status", url.Values{"csrf": {csrf}, "status": {"frozen"}, "reason": {evilReason}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("freeze: %d\n%s", resp.StatusCode, page)
	}
	resp, page := b.post(path+"/status", url.Values{"csrf": {csrf}, "status": {"frozen"}, "reason": {"again"}})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(page, "already frozen") {
		t.Fatalf("freeze twice: %d\n%s", resp.StatusCode, page)
	}
	if resp, page := b.post(path+"/status", url.Values{"csrf": {csrf}, "status": {"active"}, "reason": {"owner identified"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("reactivate: %d\n%s", resp.StatusCode, page)
	}
	_, page = b.get(path)
	if strings.Contains(page, evilReason) || !strings.Contains(page, html.EscapeString(evilReason)) {
		t.Fatalf("the reason is not rendered as text:\n%s", page)
	}
	newest := strings.Index(page, "status: frozen → active")
	oldest := strings.Index(page, "status: active → frozen")
	if newest < 0 || oldest < newest || strings.Count(page, "<td>ops</td>") != 2 || !strings.Contains(page, "owner identified") {
		t.Fatalf("history not listed, newest first, with who:\n%s", page)
	}
}
