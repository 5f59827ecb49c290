package main

import (
	"net/http"
	"strings"
	"testing"
)

// tiersYAML is the shipped config.yaml's tier table.
const tiersYAML = `tiers:
  "0": {max_balance: 500000, max_payment: 100000, daily_max: 200000}
  "1": {max_balance: 10000000, max_payment: 7000000, daily_max: 14000000}
  "2": {max_balance: 50000000, max_payment: 15000000, daily_max: 30000000}
`

// tierResp is an account's JSON with its tier, or an error's.
type tierResp struct {
	ID    string `json:"id"`
	Tier  *int   `json:"tier"`
	Error struct{ Code, Message string }
}

// TestTiersThroughServe runs contract section 14's tiers through a running switch: a
// wallet opened at tier 0 holds KES 5,000 at most, so an operator's deposit past it is
// refused (409 balance_cap) and a SEND to it is refused at its confirmation, both sides
// told by SMS and the held funds released; tier 0 also caps the payments it makes; the
// operator raises it to tier 2 with the holder's id number (and not without one), after
// which the same SEND goes through.
func TestTiersThroughServe(t *testing.T) {
	s := startSwitchWith(t, "5m", tiersYAML)
	a, b := s.phone(alice), s.phone(bob)
	w := s.open(map[string]string{"type": "wallet", "msisdn": alice, "name": "Alice"})
	var got tierResp
	if code := s.call("GET", "/api/v1/accounts/"+w.ID, auditToken, nil, &got); code != 200 || got.Tier == nil || *got.Tier != 1 {
		t.Fatalf("a new wallet: %d %+v", code, got)
	}
	s.deposit(w.ID, 1000000, "CASHIN-A")
	a.expect("deposited")
	var bw tierResp
	if code := s.call("POST", "/api/v1/accounts", opsToken, map[string]any{"type": "wallet", "msisdn": bob, "name": "Bob",
		"tier": 0}, &bw); code != http.StatusCreated || bw.Tier == nil || *bw.Tier != 0 {
		t.Fatalf("open at tier 0: %d %+v", code, bw)
	}
	s.deposit(bw.ID, 450000, "CASHIN-B")
	b.expect("deposited", "KES 4,500.00")

	// An operator's deposit past the cap: refused, nothing moved.
	var e tierResp
	if code := s.call("POST", "/api/v1/deposits", opsToken, map[string]any{"account": bw.ID, "amount": 60000,
		"reference": "CASHIN-B2"}, &e); code != http.StatusConflict || e.Error.Code != "balance_cap" ||
		!strings.Contains(e.Error.Message, "maximum balance of KES 5,000.00") {
		t.Fatalf("deposit over the cap: %d %+v", code, e)
	}
	if acc := s.account(bw.ID); acc.Balance.Posted != 450000 {
		t.Fatalf("a refused deposit moved money: %+v", acc.Balance)
	}

	// A SEND past the recipient's cap: requested, then refused at its confirmation.
	a.send("SEND 0700000002 600")
	a.send(codeIn(t, a.expect("KES 600.00", "Never share")))
	id := paymentID(a.expect("failed", "cannot receive KES 600.00", "available again"))
	b.expect(id, "limit of KES 5,000.00", "Nothing came in")
	if p := s.waitState(id, "failed"); p["state"] != "failed" {
		t.Fatalf("payment %v", p)
	}
	if acc := s.account(w.ID); acc.Balance.Posted != 1000000 || acc.Balance.Held != 0 {
		t.Fatalf("sender after the refusal: %+v", acc.Balance)
	}
	if acc := s.account(bw.ID); acc.Balance.Posted != 450000 {
		t.Fatalf("recipient after the refusal: %+v", acc.Balance)
	}

	// Tier 0's largest payment binds its own payments too.
	b.send("SEND 0700000001 1001")
	b.expect("largest payment is KES 1,000.00")

	// Raised to tier 2: not without an id number, nor with letters in it.
	path := "/api/v1/accounts/" + bw.ID
	for _, body := range []map[string]any{{"tier": 2, "reason": "id seen"}, {"tier": 2, "id_number": "12AB5678", "reason": "id seen"}} {
		if code := s.call("PATCH", path, opsToken, body, &e); code != http.StatusBadRequest || !strings.Contains(e.Error.Message, "id_number") {
			t.Fatalf("PATCH %v: %d %+v", body, code, e)
		}
	}
	var up tierResp
	if code := s.call("PATCH", path, opsToken, map[string]any{"tier": 2, "id_number": "27182818",
		"reason": "national id seen at the branch"}, &up); code != 200 || up.Tier == nil || *up.Tier != 2 {
		t.Fatalf("PATCH to tier 2: %d %+v", code, up)
	}
	changes, err := s.app.engine.AccountChanges(t.Context(), bw.ID, 10)
	if err != nil || len(changes) != 2 || changes[1].Field != "tier" || changes[1].Actor != "ops" || changes[0].Field != "id_number" {
		t.Fatalf("history %+v, %v", changes, err)
	}
	a.send("SEND 0700000002 600")
	a.send(codeIn(t, a.expect("KES 600.00", "Never share")))
	a.expect("confirmed", "KES 600.00")
	b.expect("received", "KES 600.00", "KES 5,100.00")
}
