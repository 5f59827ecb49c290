package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	payswitch "github.com/payswitch/payswitch/switch"
	"github.com/payswitch/payswitch/tools/smscsim"
	"github.com/payswitch/payswitch/webhook"
)

// The helpers of the merchant tests (contract section 10): a merchant with its key, a
// merchant's system that receives the webhooks, the demo SMSC's phone API for USSD
// screens, and the books to show that a refusal moved no money.

// shop is a merchant opened by an operator, with a merchant key the operator made for it.
type shop struct {
	s     *testSwitch
	id    string // the merchant's account ID
	code  string
	key   string // the merchant key, as shown once when it was made
	keyID string
}

// openShop opens a merchant (msisdn "" for none) and makes it a key.
func (s *testSwitch) openShop(code, name, msisdn string) *shop {
	s.t.Helper()
	body := map[string]string{"type": "merchant", "code": code, "name": name}
	if msisdn != "" {
		body["msisdn"] = msisdn
	}
	a := s.open(body)
	var k struct{ ID, Name, Key string }
	if c := s.call("POST", "/api/v1/merchants/"+a.ID+"/keys", opsToken, map[string]string{"name": "web-shop"}, &k); c != http.StatusCreated ||
		k.Key == "" || k.ID == "" || k.Name != "web-shop" {
		s.t.Fatalf("create key for %s: %d %+v", code, c, k)
	}
	return &shop{s: s, id: a.ID, code: code, key: k.Key, keyID: k.ID}
}

// do calls the API with the shop's key.
func (m *shop) do(method, path string, body, out any) int {
	m.s.t.Helper()
	return m.s.call(method, path, m.key, body, out)
}

func (m *shop) addProduct(code, name string, price int64) {
	m.s.t.Helper()
	var p struct {
		Code, Name string
		Price      int64
	}
	if c := m.do("POST", "/api/v1/merchants/"+m.id+"/products", map[string]any{"code": code, "name": name, "price": price}, &p); c != http.StatusCreated ||
		p.Code != code || p.Price != price {
		m.s.t.Fatalf("add product %s: %d %+v", code, c, p)
	}
}

// setWebhook points the shop's events at r, with r's secret.
func (m *shop) setWebhook(r *receiver) {
	m.s.t.Helper()
	var out struct{ URL string }
	if c := m.do("PUT", "/api/v1/merchants/"+m.id+"/webhook", map[string]string{"url": r.srv.URL + "/payswitch", "secret": r.secret}, &out); c != http.StatusOK ||
		out.URL != r.srv.URL+"/payswitch" {
		m.s.t.Fatalf("set webhook: %d %+v", c, out)
	}
}

// request sends a request to pay with the shop's key and wants 201.
func (m *shop) request(body map[string]any) payswitch.PaymentView {
	m.s.t.Helper()
	var p payswitch.PaymentView
	var e apiError
	var raw json.RawMessage
	c := m.do("POST", "/api/v1/payment-requests", body, &raw)
	if c != http.StatusCreated {
		json.Unmarshal(raw, &e)
		m.s.t.Fatalf("request %v: %d %+v", body, c, e)
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		m.s.t.Fatal(err)
	}
	return p
}

// delivery is one webhook delivery attempt as GET .../webhook/deliveries lists it.
type delivery struct {
	EventID string `json:"event_id"`
	Type    string `json:"type"`
	State   string `json:"state"`
	Attempt int    `json:"attempt"`
	Status  int    `json:"status"`
	Error   string `json:"error"`
	NextAt  string `json:"next_at"`
}

// waitDelivery polls the shop's delivery list until an attempt at event matches ok.
func (m *shop) waitDelivery(event string, ok func(delivery) bool) delivery {
	m.s.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var out struct{ Deliveries []delivery }
		if c := m.do("GET", "/api/v1/merchants/"+m.id+"/webhook/deliveries", nil, &out); c != http.StatusOK {
			m.s.t.Fatalf("deliveries: %d", c)
		}
		for _, d := range out.Deliveries {
			if d.EventID == event && ok(d) {
				return d
			}
		}
		if time.Now().After(deadline) {
			m.s.t.Fatalf("no delivery of %s as wanted: %+v", event, out.Deliveries)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// hookEvent is a webhook delivery's body as the merchant's system reads it.
type hookEvent struct {
	ID        string                `json:"id"`
	Type      string                `json:"type"`
	CreatedAt string                `json:"created_at"`
	Data      payswitch.PaymentView `json:"data"`
}

// receiver is a merchant's system: an HTTP server that checks each delivery's signature
// with webhook.Verify, on the switch's clock as a receiver in step with the switch
// would, and answers a good one 200, unless told to fail it or to leave it unanswered.
type receiver struct {
	t       *testing.T
	secret  string
	srv     *httptest.Server
	now     func() time.Time
	events  chan hookEvent // the deliveries answered 200, in order
	release chan struct{}  // closed at the test's end: the deliveries left hanging return

	mu       sync.Mutex // guards the fields below
	fail     int        // deliveries still to answer 503
	hang     bool       // leave deliveries unanswered until the switch gives up
	hanging  int        // deliveries waiting unanswered now
	ended    int        // deliveries that waited unanswered until the switch gave up
	attempts []hookEvent
	forged   int // deliveries whose signature or body was refused
}

func startReceiver(t *testing.T, s *testSwitch, secret string) *receiver {
	t.Helper()
	r := &receiver{t: t, secret: secret, now: s.clock.now, events: make(chan hookEvent, 64), release: make(chan struct{})}
	r.srv = httptest.NewServer(r)
	t.Cleanup(r.srv.Close)
	t.Cleanup(func() { close(r.release) }) // before Close, which waits for the handlers
	return r
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	var ev hookEvent
	if err == nil {
		err = webhook.Verify(req.Header.Get(webhook.SignatureHeader), []byte(r.secret), body, r.now(), 0)
	}
	if err == nil {
		err = json.Unmarshal(body, &ev)
	}
	r.mu.Lock()
	if err != nil {
		r.forged++
		r.mu.Unlock()
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.attempts = append(r.attempts, ev)
	hang, fail := r.hang, r.fail > 0
	if fail {
		r.fail--
	}
	if hang {
		r.hanging++
	}
	r.mu.Unlock()
	switch {
	case hang:
		select {
		case <-req.Context().Done(): // the switch gave up on this attempt
		case <-r.release:
		}
		r.mu.Lock()
		r.hanging, r.ended = r.hanging-1, r.ended+1
		r.mu.Unlock()
		return
	case fail:
		http.Error(w, "try again later", http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
	select {
	case r.events <- ev:
	default:
		r.t.Errorf("receiver: more than %d events unread", cap(r.events))
	}
}

// set changes how the receiver answers from the next delivery on.
func (r *receiver) set(fail int, hang bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fail, r.hang = fail, hang
}

// state is what the receiver has seen: every well-signed attempt, how many wait
// unanswered now, and how many were refused.
func (r *receiver) state() (attempts []hookEvent, hanging, forged int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]hookEvent(nil), r.attempts...), r.hanging, r.forged
}

// hangs is how many deliveries wait unanswered now, and how many did until the switch
// gave up on them.
func (r *receiver) hangs() (now, ended int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hanging, r.ended
}

// expect waits for the next event answered 200 and checks its type and payment.
func (r *receiver) expect(typ, paymentID string) hookEvent {
	r.t.Helper()
	select {
	case ev := <-r.events:
		if ev.Type != typ || ev.Data.ID != paymentID || !strings.HasPrefix(ev.ID, "evt_") {
			r.t.Fatalf("webhook %s %s for %s (state %s), want %s for %s", ev.ID, ev.Type, ev.Data.ID, ev.Data.State, typ, paymentID)
		}
		return ev
	case <-time.After(15 * time.Second):
		r.t.Fatalf("no webhook %s for %s", typ, paymentID)
	}
	return hookEvent{}
}

// waitHanging waits until n deliveries wait unanswered.
func (r *receiver) waitHanging(n int) {
	r.t.Helper()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, h, _ := r.state(); h >= n {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("%d deliveries never waited at once", n)
		}
	}
}

// ussdScreen is the USSD screen msisdn's phone shows, read through the demo SMSC's phone
// API (GET /ussd), as tools/phone reads it.
func (s *testSwitch) ussdScreen(msisdn string) (smscsim.USSDScreen, bool) {
	s.t.Helper()
	resp, err := http.Get("http://" + s.sim.PhoneAddr() + "/ussd?msisdn=" + msisdn)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var sc smscsim.USSDScreen
	if resp.StatusCode == http.StatusNotFound {
		return sc, false
	}
	if err := json.NewDecoder(resp.Body).Decode(&sc); err != nil || resp.StatusCode != http.StatusOK {
		s.t.Fatalf("GET /ussd: %d %v", resp.StatusCode, err)
	}
	return sc, true
}

// waitScreen polls the phone until its screen contains want.
func (s *testSwitch) waitScreen(msisdn, want string) smscsim.USSDScreen {
	s.t.Helper()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if sc, ok := s.ussdScreen(msisdn); ok && strings.Contains(sc.Text, want) {
			return sc
		}
		if time.Now().After(deadline) {
			sc, _ := s.ussdScreen(msisdn)
			s.t.Fatalf("the USSD screen of %s is %q, want it to contain %q", msisdn, sc.Text, want)
		}
	}
}

// keyUSSD answers the phone's open USSD screen with text (POST /ussd).
func (s *testSwitch) keyUSSD(msisdn, text string) {
	s.t.Helper()
	b, _ := json.Marshal(smscsim.USSDInput{From: msisdn, Text: text})
	resp, err := http.Post("http://"+s.sim.PhoneAddr()+"/ussd", "application/json", bytes.NewReader(b))
	if err != nil {
		s.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		s.t.Fatalf("POST /ussd %q: %d", text, resp.StatusCode)
	}
}

// expectSMS is expect for a phone that gets USSD screens too: it skips them.
func (p *phone) expectSMS(want ...string) string {
	p.t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case m := <-p.mt:
			if m.USSD != nil {
				continue
			}
			for _, w := range want {
				if !strings.Contains(m.Text, w) {
					p.t.Fatalf("SMS to %s = %q, want it to contain %q", p.msisdn, m.Text, w)
				}
			}
			return m.Text
		case <-deadline:
			p.t.Fatalf("no SMS to %s (wanted %q)", p.msisdn, want)
		}
	}
}

// books is what the ledger says: the trial balance and the balances of some accounts.
type books struct {
	Balanced   bool
	Currencies map[string]struct{ Debits, Credits int64 }
	Balances   map[string]accountResp
}

func (s *testSwitch) books(ids ...string) books {
	s.t.Helper()
	var b books
	if c := s.call("GET", "/api/v1/ledger/trial-balance", auditToken, nil, &b); c != http.StatusOK || !b.Balanced {
		s.t.Fatalf("trial balance: %d %+v", c, b)
	}
	b.Balances = map[string]accountResp{}
	for _, id := range ids {
		b.Balances[id] = s.account(id)
	}
	return b
}

// unchanged fails the test if the books moved since before.
func (s *testSwitch) unchanged(before books) {
	s.t.Helper()
	ids := make([]string, 0, len(before.Balances))
	for id := range before.Balances {
		ids = append(ids, id)
	}
	if after := s.books(ids...); !reflect.DeepEqual(after, before) {
		s.t.Fatalf("money moved:\nbefore %+v\nafter  %+v", before, after)
	}
}

// kickHooks wakes the webhook worker, as its timer would once the switch's clock,
// moved by the test, reaches a retry's due time.
func (s *testSwitch) kickHooks() { s.app.merchants.hooks.Kick() }

// advance moves the switch's clock d on. It first waits until the outbox has nothing
// queued or sending: a lease taken before the jump would run out with it, and its
// message go out twice.
func (s *testSwitch) advance(d time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		unsent, err := s.app.outbox.Unsent(context.Background())
		if err != nil {
			s.t.Fatal(err)
		}
		if unsent["queued"] == 0 && unsent["sending"] == 0 {
			break
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("the outbox still holds messages to send: %v", unsent)
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.clock.advance(d)
}
