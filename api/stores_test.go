package api_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/payswitch/payswitch/ledger"
	payswitch "github.com/payswitch/payswitch/switch"
)

// The store routes: an operator or the merchant's own key opens, lists and closes
// stores; another merchant's key sees none of them; a till is unique across tills and
// merchant codes.
func TestStoreRoutes(t *testing.T) {
	rig := newMerchantRig(t, nil)
	base := "/api/v1/merchants/" + rig.m1.ID + "/stores"

	r := rig.do(opsToken, "POST", base, `{"name": "Westlands", "till": "55611", "msisdn": "0700000950"}`)
	if r.status != http.StatusCreated || r.json["till"] != "55611" || r.json["msisdn"] != "254700000950" ||
		r.json["status"] != "open" || r.json["merchant"] != rig.m1.ID {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	west, _ := r.json["id"].(string)
	if r := rig.do(rig.key1, "POST", base, `{"name": "<b>Eastleigh</b>", "till": "55612"}`); r.status != http.StatusCreated ||
		r.json["name"] != "<b>Eastleigh</b>" {
		t.Fatalf("create with the merchant's key: %d %s", r.status, r.body)
	}
	for _, c := range []struct {
		name, token, path, body string
		status                  int
		code                    string
	}{
		{"a till that is a store's", opsToken, base, `{"name": "X", "till": "55611"}`, 409, "till_taken"},
		{"a till that is a merchant's code", opsToken, base, `{"name": "X", "till": "55502"}`, 409, "till_taken"},
		{"a bad till", opsToken, base, `{"name": "X", "till": "5A"}`, 400, "invalid_request"},
		{"no name", opsToken, base, `{"till": "55613"}`, 400, "invalid_request"},
		{"a bad phone", opsToken, base, `{"name": "X", "till": "55613", "msisdn": "abc"}`, 400, "invalid_request"},
		{"another merchant's key", rig.key2, base, `{"name": "X", "till": "55613"}`, 404, "not_found"},
		{"an auditor", audToken, base, `{"name": "X", "till": "55613"}`, 403, "forbidden"},
		{"an unknown field", opsToken, base, `{"name": "X", "till": "55613", "owner": "me"}`, 400, "invalid_request"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if r := rig.do(c.token, "POST", c.path, c.body); r.status != c.status || r.code() != c.code {
				t.Fatalf("%d %s, want %d %s", r.status, r.body, c.status, c.code)
			}
		})
	}
	// A merchant code that is a till is refused by the database, whoever creates it.
	_, err := rig.engine.OpenAccount(context.Background(), payswitchOpenMerchant("55611"))
	if err == nil || !strings.Contains(err.Error(), "till_taken") {
		t.Fatalf("a merchant with a till as its code: %v", err)
	}

	list := rig.do(audToken, "GET", base, "")
	if stores, _ := list.json["stores"].([]any); list.status != 200 || len(stores) != 2 {
		t.Fatalf("list: %d %s", list.status, list.body)
	}
	if r := rig.do(rig.key2, "GET", base, ""); r.status != 404 {
		t.Fatalf("another merchant lists: %d %s", r.status, r.body)
	}
	if r := rig.do(rig.key2, "PATCH", base+"/"+west, `{"status": "closed"}`); r.status != 404 {
		t.Fatalf("another merchant closes: %d %s", r.status, r.body)
	}
	if r := rig.do(opsToken, "PATCH", base+"/"+west, `{"status": "shut"}`); r.status != 400 {
		t.Fatalf("bad status: %d %s", r.status, r.body)
	}
	if r := rig.do(rig.key1, "PATCH", base+"/"+west, `{"status": "closed"}`); r.status != 200 || r.json["status"] != "closed" {
		t.Fatalf("close: %d %s", r.status, r.body)
	}
	if r := rig.do(opsToken, "PATCH", base+"/st_nothing", `{"status": "closed"}`); r.status != 404 {
		t.Fatalf("close an unknown store: %d %s", r.status, r.body)
	}
}

// The sales report, as JSON and as CSV, for the merchant's key and the auditor; the
// bad queries answer 400, another merchant and unknown stores 404.
func TestSalesRoute(t *testing.T) {
	rig := newMerchantRig(t, nil)
	ctx := context.Background()
	cash, err := rig.ledger.SystemAccount(ctx, ledger.Cash, "KES", "KES")
	if err != nil {
		t.Fatal(err)
	}
	for i, amount := range []int64{10000, 20001, 5000} {
		if _, err := rig.ledger.Transfer(ctx, ledger.TransferRequest{Key: fmt.Sprint("pay-", i), Debit: cash.ID,
			Credit: rig.m1.ID, Amount: amount, PaymentID: fmt.Sprint("P", i), Kind: "merchant_payment"}); err != nil {
			t.Fatal(err)
		}
		rig.clock.Advance(time.Hour)
	}
	if _, err := rig.ledger.Transfer(ctx, ledger.TransferRequest{Key: "refund-1", Debit: rig.m1.ID, Credit: cash.ID,
		Amount: 1000, PaymentID: "P1", Kind: "refund"}); err != nil {
		t.Fatal(err)
	}
	path := "/api/v1/merchants/" + rig.m1.ID + "/sales?from=2026-12-07T00:00:00Z&to=2026-12-08T00:00:00Z&by="
	r := rig.do(rig.key1, "GET", path+"day", "")
	rows, _ := r.json["rows"].([]any)
	if r.status != 200 || len(rows) != 1 {
		t.Fatalf("by day: %d %s", r.status, r.body)
	}
	want := map[string]any{"period": "2026-12-07T00:00:00Z", "store": "main", "payments": 3.0, "gross": 35001.0,
		"refunds": 1000.0, "net": 34001.0, "average_ticket": 11667.0}
	if fmt.Sprint(rows[0]) != fmt.Sprint(want) {
		t.Fatalf("row %v\nwant %v", rows[0], want)
	}
	if r := rig.do(audToken, "GET", path+"hour", ""); len(r.json["rows"].([]any)) != 4 { // three payments and the refund, each in its hour
		t.Fatalf("by hour: %d %s", r.status, r.body)
	}

	req, _ := http.NewRequest("GET", rig.srv.URL+path+"day&store=main", nil)
	req.Header.Set("Authorization", "Bearer "+opsToken)
	req.Header.Set("Accept", "text/csv")
	resp, err := rig.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	recs, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
	if err != nil || resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") || len(recs) != 2 ||
		strings.Join(recs[0], ",") != "period,store,payments,gross,refunds,net,average_ticket" ||
		strings.Join(recs[1], ",") != "2026-12-07T00:00:00Z,main,3,35001,1000,34001,11667" {
		t.Fatalf("CSV: %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}

	for _, c := range []struct {
		name, token, query string
		status             int
	}{
		{"from after to", opsToken, "?from=2026-12-08T00:00:00Z&to=2026-12-07T00:00:00Z&by=day", 400},
		{"over 366 days", opsToken, "?from=2025-01-01T00:00:00Z&to=2026-12-07T00:00:00Z&by=day", 400},
		{"bad by", opsToken, "?from=2026-12-07T00:00:00Z&to=2026-12-08T00:00:00Z&by=week", 400},
		{"no from", opsToken, "?to=2026-12-08T00:00:00Z&by=day", 400},
		{"a bad time", opsToken, "?from=yesterday&to=2026-12-08T00:00:00Z&by=day", 400},
		{"an unknown store", opsToken, "?from=2026-12-07T00:00:00Z&to=2026-12-08T00:00:00Z&by=day&store=st_x", 404},
		{"another merchant's key", rig.key2, "?from=2026-12-07T00:00:00Z&to=2026-12-08T00:00:00Z&by=day", 404},
	} {
		t.Run(c.name, func(t *testing.T) {
			if r := rig.do(c.token, "GET", "/api/v1/merchants/"+rig.m1.ID+"/sales"+c.query, ""); r.status != c.status {
				t.Fatalf("%d %s, want %d", r.status, r.body, c.status)
			}
		})
	}
}

func payswitchOpenMerchant(code string) payswitch.OpenAccount {
	return payswitch.OpenAccount{Type: ledger.Merchant, Name: "Copycat", Code: code}
}
