package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payswitch/payswitch/webhook"
)

// testClock is a clock the test moves.
type testClock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// hookBody is an event as the switch sends it, about payment id.
func hookBody(t *testing.T, eventID, typ, id, state string, amount int64, payee string) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"id": eventID, "type": typ, "created_at": "2026-12-07T08:00:00Z",
		"data": map[string]any{"id": id, "state": state, "amount": amount, "payee": payee, "type": "merchant_payment"}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// deliver POSTs body to url with signature (none when "") and returns the status.
func deliver(t *testing.T, url string, body []byte, signature string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if signature != "" {
		req.Header.Set(webhook.SignatureHeader, signature)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestHookReceiver(t *testing.T) {
	clock := &testClock{t: time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)}
	secrets := map[string][]byte{"70000": []byte("secret-of-till-70000"), "70001": []byte("secret-of-till-70001")}
	recv, err := startHookReceiver(secrets, clock.now)
	if err != nil {
		t.Fatal(err)
	}
	defer recv.close()
	if a, b := recv.url(0, "70000"), recv.url(1, "70001"); a == b || !strings.HasSuffix(a, "/hook/70000") {
		t.Fatalf("endpoints %q and %q: want one port per till, ending in the till's path", a, b)
	}
	url := recv.url(0, "70000")
	sign := func(secret string, body []byte) string {
		return webhook.Sign([]byte(secret), clock.now().Unix(), body)
	}
	good := hookBody(t, "evt_1", webhook.PaymentCompleted, "PAYMENT001", "completed", 1500, "M1")

	if got := deliver(t, url, good, sign("secret-of-till-70000", good)); got != http.StatusNoContent {
		t.Fatalf("a well signed delivery: status %d, want 204", got)
	}
	clock.advance(time.Second)
	if got := deliver(t, url, good, sign("secret-of-till-70000", good)); got != http.StatusNoContent {
		t.Fatalf("the same event again: status %d, want 204 (delivery is at least once)", got)
	}
	a, ok := recv.completedArrival("PAYMENT001")
	if !ok || a.till != "70000" || a.amount != 1500 || a.payee != "M1" || a.state != "completed" {
		t.Fatalf("arrival of PAYMENT001 = %+v, %v", a, ok)
	}
	if !a.at.Equal(time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)) {
		t.Errorf("arrival at %v: want the first delivery's time on the receiver's clock", a.at)
	}
	if recv.valid.Load() != 1 || recv.duplicates.Load() != 1 {
		t.Errorf("valid=%d duplicates=%d; want 1 and 1", recv.valid.Load(), recv.duplicates.Load())
	}

	other := hookBody(t, "evt_2", webhook.PaymentCompleted, "PAYMENT002", "completed", 700, "M1")
	refused := []struct {
		name      string
		url       string
		body      []byte
		signature string
		status    int
	}{
		{"another till's secret", url, other, sign("secret-of-till-70001", other), http.StatusBadRequest},
		{"no signature", url, other, "", http.StatusBadRequest},
		{"body changed after signing", url, bytes.Replace(other, []byte("700"), []byte("799"), 1), sign("secret-of-till-70000", other), http.StatusBadRequest},
		{"signed six minutes ago", url, other, webhook.Sign([]byte("secret-of-till-70000"), clock.now().Add(-6*time.Minute).Unix(), other), http.StatusBadRequest},
		{"unknown till", recv.url(0, "79999"), other, sign("secret-of-till-70000", other), http.StatusNotFound},
		{"signed, but no event", url, []byte(`{"hello":1}`), sign("secret-of-till-70000", []byte(`{"hello":1}`)), http.StatusBadRequest},
	}
	for _, tt := range refused {
		if got := deliver(t, tt.url, tt.body, tt.signature); got != tt.status {
			t.Errorf("%s: status %d, want %d", tt.name, got, tt.status)
		}
	}
	if recv.bad.Load() != 4 || recv.malformed.Load() != 2 {
		t.Errorf("bad=%d malformed=%d; want 4 signatures refused and 2 other refusals", recv.bad.Load(), recv.malformed.Load())
	}
	if _, ok := recv.completedArrival("PAYMENT002"); ok {
		t.Errorf("a refused delivery was recorded")
	}
	if n := len(recv.refusals()); n != 6 {
		t.Errorf("%d refusals kept for the log, want 6", n)
	}

	// A second event (another ID) about a payment already completed is a fault.
	again := hookBody(t, "evt_3", webhook.PaymentCompleted, "PAYMENT001", "completed", 1500, "M1")
	if got := deliver(t, url, again, sign("secret-of-till-70000", again)); got != http.StatusNoContent {
		t.Fatalf("status %d", got)
	}
	if recv.reCompleted.Load() != 1 {
		t.Errorf("reCompleted=%d, want 1", recv.reCompleted.Load())
	}
}

func TestCheckHooks(t *testing.T) {
	tills := map[string]string{"70000": "M1"} // till 70001 has no webhook
	secret := []byte("secret-of-till-70000")
	// The consistent story: phone 1 paid 1,500 to till 70000 (with a webhook) and 700 to
	// till 70001 (without); both confirmed; the one webhook came.
	setup := func(t *testing.T) (*hookReceiver, []*phone, func(eventID, id string, amount int64, payee string)) {
		recv, err := startHookReceiver(map[string][]byte{"70000": secret}, time.Now)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(recv.close)
		p := newPhone("254710000000")
		p.known["PAYMENT001"] = attempt{amount: 1500, till: "70000"}
		p.known["PAYMENT002"] = attempt{amount: 700, till: "70001"}
		p.confirmed["PAYMENT001"], p.confirmed["PAYMENT002"] = 1, 1
		send := func(eventID, id string, amount int64, payee string) {
			body := hookBody(t, eventID, webhook.PaymentCompleted, id, "completed", amount, payee)
			if got := deliver(t, recv.url(0, "70000"), body, webhook.Sign(secret, time.Now().Unix(), body)); got != http.StatusNoContent {
				t.Fatalf("delivery: status %d", got)
			}
		}
		return recv, []*phone{p}, send
	}
	tests := []struct {
		name    string
		change  func(recv *hookReceiver, ps []*phone, send func(string, string, int64, string))
		wantErr string
	}{
		{name: "webhooks match", change: func(_ *hookReceiver, _ []*phone, send func(string, string, int64, string)) {
			send("evt_1", "PAYMENT001", 1500, "M1")
			send("evt_1", "PAYMENT001", 1500, "M1") // a duplicate delivery is allowed
		}},
		{name: "webhook missing", change: func(*hookReceiver, []*phone, func(string, string, int64, string)) {},
			wantErr: "254710000000: payment PAYMENT001 confirmed to the phone, but no payment.completed webhook arrived"},
		{name: "other amount", change: func(_ *hookReceiver, _ []*phone, send func(string, string, int64, string)) {
			send("evt_1", "PAYMENT001", 1499, "M1")
		}, wantErr: "payment PAYMENT001: the webhook says completed, 1499 to M1; the phone paid 1500 to till 70000 (M1)"},
		{name: "other payee", change: func(_ *hookReceiver, _ []*phone, send func(string, string, int64, string)) {
			send("evt_1", "PAYMENT001", 1500, "M9")
		}, wantErr: "1500 to M9"},
		{name: "webhook for a payment no phone saw confirmed", change: func(_ *hookReceiver, _ []*phone, send func(string, string, int64, string)) {
			send("evt_1", "PAYMENT001", 1500, "M1")
			send("evt_2", "PAYMENT003", 100, "M1")
		}, wantErr: "a payment.completed webhook for PAYMENT003, which no phone saw confirmed"},
		{name: "bad signature", change: func(recv *hookReceiver, _ []*phone, send func(string, string, int64, string)) {
			send("evt_1", "PAYMENT001", 1500, "M1")
			body := hookBody(t, "evt_2", webhook.PaymentCompleted, "PAYMENT004", "completed", 1, "M1")
			deliver(t, recv.url(0, "70000"), body, webhook.Sign([]byte("not-the-secret-at-all"), time.Now().Unix(), body))
		}, wantErr: "1 deliveries whose signature did not verify"},
		{name: "two events for one payment", change: func(_ *hookReceiver, _ []*phone, send func(string, string, int64, string)) {
			send("evt_1", "PAYMENT001", 1500, "M1")
			send("evt_2", "PAYMENT001", 1500, "M1")
		}, wantErr: "1 payment.completed events about a payment that already had one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recv, phones, send := setup(t)
			tt.change(recv, phones, send)
			err := checkHooks(recv, phones, tills)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("checkHooks: %v", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("checkHooks passed; want an error with %q", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("checkHooks: %v\nwant an error with %q", err, tt.wantErr)
			}
		})
	}
}

func TestWaitHooks(t *testing.T) {
	secret := []byte("secret-of-till-70000")
	recv, err := startHookReceiver(map[string][]byte{"70000": secret}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer recv.close()
	body := hookBody(t, "evt_1", webhook.PaymentCompleted, "PAYMENT001", "completed", 1500, "M1")
	if got := deliver(t, recv.url(0, "70000"), body, webhook.Sign(secret, time.Now().Unix(), body)); got != http.StatusNoContent {
		t.Fatalf("status %d", got)
	}
	// Every one has arrived: no wait.
	if missing := waitHooks(t.Context(), recv, []string{"PAYMENT001"}); missing != 0 {
		t.Errorf("waitHooks = %d missing, want 0", missing)
	}
	// One never comes: the wait ends with its context, and says how many are missing.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if missing := waitHooks(ctx, recv, []string{"PAYMENT001", "PAYMENT002"}); missing != 1 {
		t.Errorf("waitHooks = %d missing, want 1", missing)
	}
}
