package webhook

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/payswitch/payswitch/internal/pgtest"

	"github.com/payswitch/payswitch/store"
)

func TestSetEndpointRefusesBadURLsAndSecrets(t *testing.T) {
	r := newRig(t, func(c *Config) {
		c.Forbidden = []string{"127.0.0.1:8080", ":2790", "payswitch.internal:443", "", "127.0.0.1:0"}
	})
	good := "https://shop.example/payswitch?key=1"
	for _, tc := range []struct {
		name, url, secret, field string
	}{
		{"ftp", "ftp://shop.example/hook", secretA, "url"},
		{"no scheme", "shop.example/hook", secretA, "url"},
		{"no host", "https:///hook", secretA, "url"},
		{"empty host with port", "http://:8081/hook", secretA, "url"},
		{"opaque", "http:shop.example", secretA, "url"},
		{"user info", "https://shop:pw@shop.example/hook", secretA, "url"},
		{"user alone", "https://shop@shop.example/hook", secretA, "url"},
		{"fragment", "https://shop.example/hook#x", secretA, "url"},
		{"space", "https://shop.example/a hook", secretA, "url"},
		{"too long", "https://shop.example/" + strings.Repeat("a", MaxURLLength), secretA, "url"},
		{"bad port", "https://shop.example:99999/hook", secretA, "url"},
		{"empty", "", secretA, "url"},
		{"the API", "http://127.0.0.1:8080/api/v1/deposits", secretA, "url"},
		{"the API as localhost", "http://localhost:8080/api/v1/deposits", secretA, "url"},
		{"the API as LOCALHOST.", "http://LOCALHOST.:8080/x", secretA, "url"},
		{"the API over IPv6 loopback", "http://[::1]:8080/x", secretA, "url"},
		{"the API as another loopback address", "http://127.0.0.2:8080/x", secretA, "url"},
		{"the API as IPv4 in IPv6", "http://[::ffff:127.0.0.1]:8080/x", secretA, "url"},
		{"the API as 0.0.0.0", "http://0.0.0.0:8080/x", secretA, "url"},
		{"a listener on every interface", "http://127.0.0.1:2790/mt", secretA, "url"},
		{"a named listener", "https://PAYSWITCH.internal/x", secretA, "url"},
		{"short secret", good, "0123456789abcde", "secret"},
		{"long secret", good, strings.Repeat("s", MaxSecretLength+1), "secret"},
		{"control character", good, "0123456789abcdef\n", "secret"},
		{"not ASCII", good, "0123456789abcdefé", "secret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := r.h.SetEndpoint(ctx, "M1", tc.url, tc.secret)
			var ie *InputError
			if !errors.As(err, &ie) || ie.Field != tc.field || !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want an InputError of %s", err, tc.field)
			}
			if v, ok := err.(interface{ InvalidInput() bool }); !ok || !v.InvalidInput() {
				t.Fatalf("%v does not say it is the input's fault", err)
			}
			if strings.Contains(err.Error(), tc.secret) {
				t.Fatalf("the refusal shows the secret: %v", err)
			}
		})
	}
	if _, err := r.h.Endpoint(ctx, "M1"); !errors.Is(err, ErrNoEndpoint) {
		t.Fatalf("a refused endpoint was stored: %v", err)
	}
	for _, ok := range []string{good, "http://127.0.0.1:8081/hook", "http://localhost:9090", "https://[2001:db8::1]/x",
		"http://payswitch.internal:8443/x"} {
		if err := r.h.SetEndpoint(ctx, "M1", ok, secretA); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
}

// A merchant's endpoint reads back without its secret; setting it again replaces it;
// removing it gives up its pending events and queues nothing more.
func testEndpointLifecycle(t *testing.T) {
	r := newRig(t, nil)
	if err := r.h.RemoveEndpoint(ctx, "M1"); !errors.Is(err, ErrNoEndpoint) {
		t.Fatalf("remove of none: %v", err)
	}
	r.setEndpoint("M1", "https://shop.example/a", secretA)
	r.clock.Advance(time.Minute)
	r.setEndpoint("M1", "https://shop.example/b", secretB)
	e, err := r.h.Endpoint(ctx, "M1")
	if err != nil || e.URL != "https://shop.example/b" || !e.UpdatedAt.Equal(r.clock.Now()) || e.MerchantID != "M1" {
		t.Fatalf("endpoint %+v, %v", e, err)
	}
	r.enqueue("M1", PaymentCompleted, "PAY0000001", payment)
	if err := r.h.RemoveEndpoint(ctx, "M1"); err != nil {
		t.Fatal(err)
	}
	if ev := r.event("M1", PaymentCompleted, "PAY0000001"); ev.State != stateFailed || ev.LastError == "" {
		t.Fatalf("pending event after the endpoint's removal: %+v", ev)
	}
	r.enqueue("M1", PaymentCompleted, "PAY0000002", payment)
	if n := r.count(`SELECT count(*) FROM webhook_events`); n != 1 {
		t.Fatalf("%d events, want 1: none is queued without an endpoint", n)
	}
	if _, err := r.h.Endpoint(ctx, "M1"); !errors.Is(err, ErrNoEndpoint) {
		t.Fatalf("endpoint after removal: %v", err)
	}
}

// The merchant's secret is nowhere in the database's files in clear, and a sealed secret
// copied to another merchant's row does not open there.
func testSecretIsNotStoredInClear(t *testing.T) {
	r := newRig(t, nil)
	const secret = "merchant-one-very-distinctive-secret"
	r.setEndpoint("M1", "https://shop.example/a", secret)
	r.setEndpoint("M2", "https://shop.example/b", secretB)
	var sealed string
	if err := r.db.Reader().QueryRowContext(ctx, `SELECT secret FROM webhook_endpoints WHERE merchant_id = 'M1'`).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	if got, err := r.h.open("M1", sealed); err != nil || string(got) != secret {
		t.Fatalf("open: %q, %v", got, err)
	}
	if _, err := r.h.open("M2", sealed); !errors.Is(err, errSealed) {
		t.Fatalf("M1's sealed secret opened as M2's: %v", err)
	}
	other, err := New(r.db, Config{SealKey: []byte("another switch's secret, 32 byte")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.open("M1", sealed); !errors.Is(err, errSealed) {
		t.Fatalf("opened under another key: %v", err)
	}

	if driverOf(t) == store.Postgres {
		return // the files below are SQLite's
	}
	path := r.db.Path()
	for _, f := range []string{path, path + "-wal"} { // while open: the WAL holds the writes
		if b, err := os.ReadFile(f); err == nil && bytes.Contains(b, []byte(secret)) {
			t.Fatalf("%s holds the secret in clear", f)
		}
	}
	r.db.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("https://shop.example/a")) {
		t.Fatal("the endpoint's URL is not in the file: the search looks in the wrong place")
	}
	if bytes.Contains(b, []byte(secret)) {
		t.Fatal("the database file holds the secret in clear")
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	db := newRig(t, nil).db
	for name, c := range map[string]Config{
		"no seal key":          {},
		"short seal key":       {SealKey: []byte("short")},
		"retry_for under 24h":  {SealKey: sealKey, RetryFor: 23 * time.Hour},
		"per merchant > total": {SealKey: sealKey, Workers: 2, PerMerchant: 3},
		"bad forbidden":        {SealKey: sealKey, Forbidden: []string{"8080"}},
		"negative backoff":     {SealKey: sealKey, Backoff: []time.Duration{-time.Second}},
	} {
		if _, err := New(db, c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// Left out, the per-merchant cap leaves a worker free of any one merchant whenever there
// are two: a merchant whose endpoint hangs holds up no other.
func TestPerMerchantDefaultLeavesAWorker(t *testing.T) {
	for workers, want := range map[int]int{1: 1, 2: 1, 3: 2, 8: DefaultPerMerchant} {
		c := Config{SealKey: sealKey, Workers: workers}
		if err := c.fill(); err != nil || c.PerMerchant != want {
			t.Errorf("%d workers: per merchant %d (%v), want %d", workers, c.PerMerchant, err, want)
		}
	}
}

// A listener bound after New (its port chosen then) is forbidden once Forbid names it.
func TestForbidAddsListenersBoundLater(t *testing.T) {
	r := newRig(t, func(c *Config) { c.Forbidden = []string{"127.0.0.1:0"} })
	if err := r.h.SetEndpoint(ctx, "M1", "http://127.0.0.1:41234/x", secretA); err != nil {
		t.Fatalf("before Forbid: %v", err)
	}
	if err := r.h.Forbid("127.0.0.1:41234"); err != nil {
		t.Fatal(err)
	}
	err := r.h.SetEndpoint(ctx, "M1", "http://localhost:41234/x", secretA)
	var ie *InputError
	if !errors.As(err, &ie) || ie.Field != "url" {
		t.Fatalf("after Forbid: %v, want the URL refused", err)
	}
	if err := r.h.Forbid("not an address"); err == nil {
		t.Fatal("Forbid took a malformed address")
	}
}

func TestEndpointLifecycle(t *testing.T) { pgtest.Both(t, testEndpointLifecycle) }

func TestSecretIsNotStoredInClear(t *testing.T) { pgtest.Both(t, testSecretIsNotStoredInClear) }

// On SQLite the endpoints Enqueue reads are kept in memory: an event is queued once its
// merchant's endpoint is set and none from its removal on, and Wants tells the engine
// so before it builds an event's data. On PostgreSQL Wants always says yes: another
// node may have set the endpoint.
func testEndpointsFollowChanges(t *testing.T) {
	r := newRig(t, nil)
	pg := driverOf(t) == store.Postgres
	if !r.h.Wants("M1") {
		t.Fatal("Wants before anything is known: want true")
	}
	r.enqueue("M1", PaymentCompleted, "PAY0000001", payment)
	if n := r.count(`SELECT count(*) FROM webhook_events`); n != 0 {
		t.Fatalf("%d events queued without an endpoint", n)
	}
	if r.h.Wants("M1") != pg {
		t.Fatalf("Wants without an endpoint: %v", r.h.Wants("M1"))
	}
	rc := newReceiver(t, nil)
	r.setEndpoint("M1", rc.srv.URL, secretA)
	if !r.h.Wants("M1") {
		t.Fatal("Wants with an endpoint: false")
	}
	r.enqueue("M1", PaymentCompleted, "PAY0000002", payment)
	if n := r.count(`SELECT count(*) FROM webhook_events`); n != 1 {
		t.Fatalf("%d events queued with an endpoint, want 1", n)
	}
	r.setEndpoint("M1", rc.srv.URL+"/v2", secretB)
	r.run()
	r.enqueue("M1", PaymentCompleted, "PAY0000003", payment)
	for range 2 {
		r.nextOutcome("M1", outcomeDelivered)
	}
	for range 2 {
		if req := rc.next(); req.path != "/v2" {
			t.Fatalf("delivered to %q, want the endpoint set last", req.path)
		}
	}
	if err := r.h.RemoveEndpoint(ctx, "M1"); err != nil {
		t.Fatal(err)
	}
	if r.h.Wants("M1") != pg {
		t.Fatalf("Wants after the removal: %v", r.h.Wants("M1"))
	}
	r.enqueue("M1", PaymentCompleted, "PAY0000004", payment)
	if n := r.count(`SELECT count(*) FROM webhook_events`); n != 2 {
		t.Fatalf("%d events after the removal, want 2", n)
	}
}

func TestEndpointsFollowChanges(t *testing.T) { pgtest.Both(t, testEndpointsFollowChanges) }

// A load that read the endpoints before a change and installs them after it throws its
// snapshot away: the change is not lost, and the next Enqueue loads again.
func TestEndpointsLoadRacingAChangeIsDropped(t *testing.T) {
	var e endpoints
	stale := map[string]cachedEndpoint{"M1": {url: "https://old.example/", sealed: "s"}}
	for name, change := range map[string]func(){
		"set":    func() { e.set("M1", cachedEndpoint{url: "https://new.example/", sealed: "t"}) },
		"forget": func() { e.forget("M1") },
		"reset":  func() { e.reset() },
	} {
		gen := e.generation()
		change()
		e.install(gen, stale)
		if _, _, loaded := e.lookup("M1"); loaded {
			t.Fatalf("%s: a snapshot read before the change was kept", name)
		}
	}
	gen := e.generation()
	e.install(gen, stale)
	if ep, ok, loaded := e.lookup("M1"); !loaded || !ok || ep.url != "https://old.example/" {
		t.Fatalf("a load with no change meanwhile: %+v %v %v", ep, ok, loaded)
	}
	e.forget("M1")
	if _, ok, loaded := e.lookup("M1"); !loaded || ok {
		t.Fatal("forget left the merchant in the loaded map")
	}
}
