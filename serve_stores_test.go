package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/payswitch/payswitch/settlement"
	payswitch "github.com/payswitch/payswitch/switch"
)

// TestStoresEndToEnd runs contract section 11's stores through a running switch: the
// merchant opens a store with its key, a customer pays its till by SMS, the payment
// records the store, the store's phone is told, SALES answers the store's phone, the
// sales report and the settlement's store lines show it, and a closed store's till
// refuses.
func TestStoresEndToEnd(t *testing.T) {
	const storePhone, stranger = "254700000950", "254700000777"
	s := startSwitch(t, "5m")
	w := s.open(map[string]string{"type": "wallet", "msisdn": alice, "name": "Alice"})
	a := s.phone(alice)
	s.deposit(w.ID, 100000, "CASHIN-1")
	a.expect("deposited")
	m := s.openShop("55501", "Mama Mboga", "")

	var st struct{ ID, Till, MSISDN, Status string }
	if c := m.do("POST", "/api/v1/merchants/"+m.id+"/stores",
		map[string]string{"name": "Westlands", "till": "55611", "msisdn": "0700000950"}, &st); c != http.StatusCreated ||
		st.Till != "55611" || st.MSISDN != storePhone || st.Status != "open" {
		t.Fatalf("create store: %d %+v", c, st)
	}
	var refused struct{ Error struct{ Code string } }
	if c := s.call("POST", "/api/v1/merchants/"+m.id+"/stores", opsToken,
		map[string]string{"name": "Again", "till": "55501"}, &refused); c != http.StatusConflict || refused.Error.Code != "till_taken" {
		t.Fatalf("a merchant's code as a till: %d %+v", c, refused)
	}

	if c := s.call("POST", "/api/v1/accounts", opsToken,
		map[string]string{"type": "merchant", "code": "55611", "name": "Copycat"}, &refused); c != http.StatusConflict ||
		refused.Error.Code != "till_taken" {
		t.Fatalf("a till as a new merchant's code: %d %+v", c, refused)
	}

	sp := s.phone(storePhone)
	a.send("PAY 55611 150")
	code := codeIn(t, a.expect("Mama Mboga - Westlands (55611)", "KES 150.00"))
	a.send(code)
	receipt := a.expect("confirmed", "KES 150.00", "Mama Mboga - Westlands (55611)")
	if p := s.payment(paymentID(receipt)); p["store"] != st.ID || p["payee_code"] != "55611" || p["state"] != "completed" {
		t.Fatalf("payment %v", p)
	}
	if notice := sp.expect("Mama Mboga - Westlands (55611) received KES 150.00", "2547****001"); strings.Contains(notice, "balance") {
		t.Fatalf("the store was told the merchant's balance: %q", notice)
	}
	if b := s.account(m.id).Balance; b.Posted != 15000 {
		t.Fatalf("merchant balance %+v", b)
	}

	sp.send("SALES")
	sp.expect("Mama Mboga - Westlands: 1 payments, gross KES 150.00, refunds KES 0.00, net KES 150.00")
	st2 := s.phone(stranger)
	st2.send("SALES")
	st2.expect("SALES answers only")

	loc := s.app.cfg.Location()
	day, err := settlement.ParseDay(s.clock.now().In(loc).Format("2006-01-02"), loc)
	if err != nil {
		t.Fatal(err)
	}
	q := url.Values{"from": {day.Start.Format("2006-01-02T15:04:05Z07:00")}, "to": {day.End.Format("2006-01-02T15:04:05Z07:00")},
		"by": {"day"}, "store": {st.ID}}
	var report struct {
		Rows []struct {
			Period, Store                                string
			Payments, Gross, Refunds, Net, AverageTicket int64
		}
	}
	if c := m.do("GET", "/api/v1/merchants/"+m.id+"/sales?"+q.Encode(), nil, &report); c != http.StatusOK ||
		len(report.Rows) != 1 || report.Rows[0].Store != st.ID || report.Rows[0].Payments != 1 || report.Rows[0].Gross != 15000 ||
		report.Rows[0].Net != 15000 {
		t.Fatalf("sales report: %d %+v", c, report)
	}

	// The console's account page shows the stores and the day's sales.
	b := (&consoleSwitch{s}).browser()
	b.signIn(opsToken)
	if resp, page := b.get("/console/accounts/" + m.id); resp.StatusCode != http.StatusOK ||
		!strings.Contains(page, "Stores and today's sales") || !strings.Contains(page, "Westlands") ||
		!strings.Contains(page, "55611") || !strings.Contains(page, "150.00") {
		t.Fatalf("console account page: %d\n%s", resp.StatusCode, page)
	}

	if c := m.do("PATCH", "/api/v1/merchants/"+m.id+"/stores/"+st.ID, map[string]string{"status": "closed"}, &st); c != http.StatusOK ||
		st.Status != "closed" {
		t.Fatalf("close: %d %+v", c, st)
	}
	a.send("PAY 55611 100")
	a.expect("is closed", "Nothing was paid")
	if b := s.account(w.ID).Balance; b.Posted != 85000 || b.Held != 0 {
		t.Fatalf("payer after the closed till: %+v", b)
	}

	r, err := settlement.SettleByStore(context.Background(), s.app.ledger, day, day.End, payswitch.PaymentStores)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := r.WriteCSV(&buf); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil || len(recs) != 3 {
		t.Fatalf("settlement file %q, %v", buf.String(), err)
	}
	if got := strings.Join(recs[2], ","); !strings.Contains(got, ",1,15000,0,0,15000,,,store,,0,0,"+st.ID) {
		t.Fatalf("store line %q", got)
	}
	if got := recs[1]; got[2] != "55501" || got[6] != "15000" || got[12] != settlement.StatusSettled || got[16] != "" {
		t.Fatalf("merchant line %q", got)
	}
}
