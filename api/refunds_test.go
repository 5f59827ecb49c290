package api_test

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"

	payswitch "github.com/payswitch/payswitch/switch"
)

// paid is a completed payment of amount by SMS from a new wallet to the merchant with
// code: the payer's code read from the outbox and sent back.
func (rig *merchantRig) paid(code string, amount int64) *payswitch.Payment {
	rig.t.Helper()
	p := rig.pay(code, amount)
	ctx := context.Background()
	ms, err := rig.outbox.List(ctx, p.PayerMSISDN, 1)
	if err != nil || len(ms) != 1 || ms[0].Purpose != "otp" {
		rig.t.Fatalf("code SMS: %+v %v", ms, err)
	}
	c := regexp.MustCompile(fmt.Sprintf(`(^|[^0-9])([0-9]{%d})([^0-9]|$)`, rig.engine.CodeDigits())).FindStringSubmatch(ms[0].Text)
	if c == nil {
		rig.t.Fatalf("no code in %q", ms[0].Text)
	}
	if err := rig.engine.HandleSMS(ctx, p.PayerMSISDN, c[2]); err != nil {
		rig.t.Fatal(err)
	}
	got, err := rig.engine.Payment(ctx, p.ID)
	if err != nil || got.State != payswitch.StateCompleted {
		rig.t.Fatalf("payment %+v %v", got, err)
	}
	return got
}

// balance is the posted balance of account id.
func (rig *merchantRig) balance(id string) int64 {
	rig.t.Helper()
	a, err := rig.engine.Account(context.Background(), id)
	if err != nil {
		rig.t.Fatal(err)
	}
	return a.Balance.Posted
}

func refundBody(amount any, ref string) string {
	return fmt.Sprintf(`{"amount": %v, "reference": %q, "reason": "damaged"}`, amount, ref)
}

func TestRefundByMerchantKeyThenOperator(t *testing.T) {
	rig := newMerchantRig(t, nil)
	p := rig.paid("55501", 15000)
	path := "/api/v1/payments/" + p.ID + "/refund"

	r := rig.do(rig.key1, "POST", path, refundBody(5000, "RF-1"))
	if r.status != http.StatusCreated || r.json["amount"] != 5000.0 || r.json["payment_id"] != p.ID ||
		r.json["reference"] != "RF-1" || r.json["reason"] != "damaged" || r.json["currency"] != "KES" ||
		!strings.HasPrefix(r.json["actor"].(string), "merchant "+rig.m1.ID) || r.json["transfer_id"] == "" {
		t.Fatalf("%d %s", r.status, r.body)
	}
	pay := r.json["payment"].(map[string]any)
	if pay["refunded"] != 5000.0 || pay["state"] != "completed" {
		t.Fatalf("payment in the answer: %v", pay)
	}
	first := r.json["id"]

	// The same reference again: the first refund, 200, nothing more moved.
	before := rig.balance(rig.m1.ID)
	if r := rig.do(rig.key1, "POST", path, refundBody(5000, "RF-1")); r.status != http.StatusOK || r.json["id"] != first {
		t.Fatalf("again: %d %s", r.status, r.body)
	}
	if r := rig.do(rig.key1, "POST", path, refundBody(7000, "RF-1")); r.status != http.StatusConflict || r.code() != "reference_conflict" {
		t.Fatalf("the reference, another amount: %d %s", r.status, r.body)
	}
	if got := rig.balance(rig.m1.ID); got != before {
		t.Fatalf("a repeat moved money: %d, was %d", got, before)
	}

	if r := rig.do(rig.key1, "GET", "/api/v1/payments/"+p.ID, ""); r.status != http.StatusOK || r.json["refunded"] != 5000.0 {
		t.Fatalf("payment: %d %s", r.status, r.body)
	}

	// More than is left: refused, nothing moved.
	if r := rig.do(rig.key1, "POST", path, refundBody(10001, "RF-2")); r.status != http.StatusConflict ||
		r.code() != "refund_exceeds_payment" || !strings.Contains(r.message(), "KES 100.00") {
		t.Fatalf("too much: %d %s", r.status, r.body)
	}
	// An operator refunds the rest: the payment is refunded.
	r = rig.do(opsToken, "POST", path, refundBody(10000, "RF-2"))
	if r.status != http.StatusCreated || r.json["actor"] != "ops" {
		t.Fatalf("operator: %d %s", r.status, r.body)
	}
	if pay := r.json["payment"].(map[string]any); pay["refunded"] != 15000.0 || pay["state"] != "refunded" {
		t.Fatalf("payment after the rest: %v", pay)
	}
	if got := rig.balance(rig.m1.ID); got != 0 {
		t.Fatalf("merchant's balance %d", got)
	}

	// The list: both, oldest first, to the merchant, an operator and an auditor.
	for _, tok := range []string{rig.key1, opsToken, audToken} {
		r := rig.do(tok, "GET", "/api/v1/payments/"+p.ID+"/refunds", "")
		rs, _ := r.json["refunds"].([]any)
		if r.status != http.StatusOK || len(rs) != 2 || rs[0].(map[string]any)["reference"] != "RF-1" ||
			rs[1].(map[string]any)["amount"] != 10000.0 {
			t.Fatalf("refunds: %d %s", r.status, r.body)
		}
	}
	if r := rig.do(opsToken, "POST", path, refundBody(1, "RF-3")); r.status != http.StatusConflict || r.code() != "refund_exceeds_payment" {
		t.Fatalf("a refunded payment: %d %s", r.status, r.body)
	}
	if r := rig.do(opsToken, "POST", "/api/v1/payments/"+p.ID+"/reverse", `{"reason": "fraud", "reference": "REV-1"}`); r.status != http.StatusConflict {
		t.Fatalf("a reversal of a refunded payment: %d %s", r.status, r.body)
	}
}

// Another merchant's key learns nothing of a payment: it answers exactly as one that
// does not exist, for a refund and for the list; an auditor may not refund.
func TestRefundKeptToTheMerchant(t *testing.T) {
	rig := newMerchantRig(t, nil)
	p := rig.paid("55501", 15000)
	other := rig.do(rig.key2, "POST", "/api/v1/payments/"+p.ID+"/refund", refundBody(100, "X-1"))
	missing := rig.do(rig.key2, "POST", "/api/v1/payments/ZZZZZZZZZZ/refund", refundBody(100, "X-1"))
	if other.status != http.StatusNotFound || missing.status != http.StatusNotFound || other.code() != "not_found" ||
		other.message() != strings.ReplaceAll(missing.message(), "ZZZZZZZZZZ", p.ID) {
		t.Fatalf("other %d %s; missing %d %s", other.status, other.body, missing.status, missing.body)
	}
	if r := rig.do(rig.key2, "GET", "/api/v1/payments/"+p.ID+"/refunds", ""); r.status != http.StatusNotFound {
		t.Fatalf("the list, to another merchant: %d %s", r.status, r.body)
	}
	if r := rig.do(audToken, "POST", "/api/v1/payments/"+p.ID+"/refund", refundBody(100, "X-2")); r.status != http.StatusForbidden {
		t.Fatalf("auditor: %d %s", r.status, r.body)
	}
	if r := rig.do("", "POST", "/api/v1/payments/"+p.ID+"/refund", refundBody(100, "X-3")); r.status != http.StatusUnauthorized {
		t.Fatalf("no token: %d %s", r.status, r.body)
	}
	if got := rig.balance(rig.m1.ID); got != 15000 {
		t.Fatalf("merchant's balance %d", got)
	}
}

func TestRefundBadInput(t *testing.T) {
	rig := newMerchantRig(t, nil)
	p := rig.paid("55501", 15000)
	pending := rig.pay("55501", 2000)
	path := "/api/v1/payments/" + p.ID + "/refund"
	for _, tc := range []struct {
		name, path, body string
		status           int
		code             string
	}{
		{"a fraction", path, refundBody(10.5, "B-1"), 400, "invalid_request"},
		{"a string", path, refundBody(`"100"`, "B-2"), 400, "invalid_request"},
		{"zero", path, refundBody(0, "B-3"), 400, "invalid_request"},
		{"negative", path, refundBody(-100, "B-4"), 400, "invalid_request"},
		{"no reference", path, `{"amount": 100}`, 400, "invalid_request"},
		{"an unknown field", path, `{"amount": 100, "reference": "B-5", "to": "254700000009"}`, 400, "invalid_request"},
		{"no body", path, ``, 400, "invalid_request"},
		{"waiting for its code", "/api/v1/payments/" + pending.ID + "/refund", refundBody(100, "B-6"), 409, "not_refundable"},
	} {
		if r := rig.do(rig.key1, "POST", tc.path, tc.body); r.status != tc.status || r.code() != tc.code {
			t.Errorf("%s: %d %s", tc.name, r.status, r.body)
		}
	}
	if got, err := rig.engine.Payment(context.Background(), p.ID); err != nil || got.Refunded != 0 {
		t.Fatalf("%+v %v", got, err)
	}
	if got := rig.balance(rig.m1.ID); got != 15000 {
		t.Fatalf("merchant's balance %d", got)
	}
}
