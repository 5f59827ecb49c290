package ivr

import (
	"context"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// BenchmarkCallbackStart is the first callback of an inbound call and its hang-up, over
// the HTTP handler without a network: form parsing, a new session, the XML menu.
func BenchmarkCallbackStart(b *testing.B) {
	h := newHarness(b, options{})
	h.Wallet(alice, 0)
	handler := h.svc.Handler()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		id := "bench-" + strconv.Itoa(i)
		for _, active := range []string{"1", "0"} {
			form := url.Values{"sessionId": {id}, "isActive": {active}, "direction": {"Inbound"},
				"callerNumber": {"+254700000001"}, "destinationNumber": {ivrNumber}}
			req := httptest.NewRequest("POST", "/ivr", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			w := httptest.NewRecorder()
			handler.ServeHTTP(w, req)
			if w.Code != 200 {
				b.Fatal(w.Code)
			}
		}
	}
}

// BenchmarkInboundPayment is a whole merchant payment by phone: menu, code, amount (the
// engine holds the funds and queues the code SMS), and the code (the engine posts).
func BenchmarkInboundPayment(b *testing.B) {
	h := newHarness(b, options{})
	h.Wallet(alice, 1_000_000_000)
	h.Merchant(till, "Mama Mboga", mama)
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		id := "pay-" + strconv.Itoa(i)
		step := func(digits string) Response {
			return h.svc.handle(ctx, callback{sessionID: id, active: true, direction: "inbound", caller: alice, digits: digits})
		}
		for _, k := range []string{"", "1", till, "150"} {
			step(k)
		}
		b.StopTimer()
		code := h.code(alice)
		b.StartTimer()
		if r := step(code); !strings.Contains(r.text(), "is complete") {
			b.Fatalf("payment %d: %q", i, r.text())
		}
		h.svc.end(id)
	}
}
