package airtime

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

// fast is the carrier timeout of tests where nothing hangs; slow enough never to fire.
const fast = 5 * time.Second

// hangTimeout is the carrier timeout of tests where the carrier hangs on purpose.
const hangTimeout = 100 * time.Millisecond

func TestCreditSuccess(t *testing.T) {
	f := newFakeCarrier(t)
	h := newHarness(t, f.url(), fast)

	got := h.c.Credit(context.Background(), req("PAY0000001"))

	if got != (Result{Outcome: Success, CarrierReference: "CR-PAY0000001"}) {
		t.Fatalf("Credit = %+v, want success with the carrier's reference", got)
	}
	posts, gets := f.counts()
	if posts != 1 || gets != 0 {
		t.Fatalf("carrier saw %d POSTs and %d lookups, want 1 and 0", posts, gets)
	}
	if want := (topup{"PAY0000001", "254700000001", 5000, "KES"}); f.bodies[0] != want {
		t.Fatalf("carrier got %+v, want %+v", f.bodies[0], want)
	}
	if f.auth[0] != "Bearer "+testToken {
		t.Fatalf("Authorization = %q, want the bearer token", f.auth[0])
	}
	if n := value(t, h.c.m.requests.WithLabelValues("ca", "success")); n != 1 {
		t.Fatalf("requests_total{outcome=success} = %v, want 1", n)
	}
}

func TestCreditDefiniteFailure(t *testing.T) {
	tests := []struct {
		name       string
		answer     behaviour // to the POST; zero: the contract's own refusal
		wantReason string
		wantLogged string // in the logs too
	}{
		{"failed answer", behaviour{}, "number not on our network", ""},
		{"failed without reason", behaviour{status: 200, body: `{"status":"failed"}`}, "refused by the carrier", ""},
		{"400 without body", behaviour{status: 400}, "refused by the carrier (HTTP 400)", ""},
		{"422 with failed body", behaviour{status: 422, body: `{"status":"failed","reason":"amount too small"}`},
			"amount too small (HTTP 422)", ""},
		{"401 bad token", behaviour{status: 401, body: "unauthorized"}, "HTTP 401", "check the carrier's airtime token"},
		{"403", behaviour{status: 403}, "HTTP 403", "check the carrier's airtime token"},
		{"404 on POST", behaviour{status: 404}, "HTTP 404", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeCarrier(t)
			f.refuse["254700000001"] = "number not on our network"
			if tt.answer.status != 0 {
				f.postHook = func(int) behaviour { return tt.answer }
			}
			h := newHarness(t, f.url(), fast)

			got := h.c.Credit(context.Background(), req("PAY0000002"))

			wantResult(t, got, Failed, tt.wantReason)
			if posts, gets := f.counts(); posts != 1 || gets != 0 {
				t.Fatalf("carrier saw %d POSTs and %d lookups, want one POST: a refusal is final", posts, gets)
			}
			if f.creditsOf("PAY0000002") != 0 {
				t.Fatal("refused top-up was credited")
			}
			if !strings.Contains(h.logs.String(), tt.wantLogged) {
				t.Fatalf("logs lack %q:\n%s", tt.wantLogged, h.logs)
			}
			if h.c.br.isOpen() {
				t.Fatal("a refusal opened the breaker")
			}
		})
	}
}

func TestCreditTimeoutThenLookup(t *testing.T) {
	tests := []struct {
		name       string
		refuse     bool      // the carrier refuses the number
		post       behaviour // every POST
		want       Outcome
		wantReason string
		wantCredit int
	}{
		{"credited, answers lost", false, creditAndHang, Success, "", 1},
		{"refused, answers lost", true, creditAndHang, Failed, "number barred", 0},
		{"never processed", false, hangOnly, Unknown, "no record yet", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeCarrier(t)
			if tt.refuse {
				f.refuse["254700000001"] = "number barred"
			}
			f.postHook = func(int) behaviour { return tt.post }
			h := newHarness(t, f.url(), hangTimeout)

			got := h.c.Credit(context.Background(), req("PAY0000003"))

			wantResult(t, got, tt.want, tt.wantReason)
			if tt.want == Success && got.CarrierReference != "CR-PAY0000003" {
				t.Fatalf("carrier reference %q, want the lookup's", got.CarrierReference)
			}
			if posts, gets := f.counts(); posts != 3 || gets != 1 {
				t.Fatalf("carrier saw %d POSTs and %d lookups, want 3 and 1", posts, gets)
			}
			if n := f.creditsOf("PAY0000003"); n != tt.wantCredit {
				t.Fatalf("credited %d times, want %d", n, tt.wantCredit)
			}
			for i, b := range f.bodies {
				if b.Reference != "PAY0000003" {
					t.Fatalf("POST %d carried reference %q: retries must repeat it", i+1, b.Reference)
				}
			}
		})
	}
}

func TestCreditRetriesTrouble(t *testing.T) {
	tests := []struct {
		name  string
		first behaviour // the answer to the first POST; the second is the contract's
	}{
		{"500", answer500()},
		{"503 after crediting", behaviour{process: true, status: 503}},
		{"timeout", creditAndHang},
		{"broken JSON", behaviour{status: 200, body: `{"status":"succ`}},
		{"2xx without status", behaviour{status: 200, body: `{"carrier_reference":"X"}`}},
		{"2xx empty", behaviour{status: 204}},
		{"unknown status", behaviour{status: 200, body: `{"status":"pending"}`}},
		{"status in other case", behaviour{status: 200, body: `{"status":"SUCCESS"}`}},
		{"trailing garbage", behaviour{status: 200, body: `{"status":"success"} {}`}},
		{"another reference", behaviour{status: 200, body: `{"status":"success","reference":"OTHER"}`}},
		{"over 64 KiB", behaviour{status: 200, body: `{"status":"success","x":"` + strings.Repeat("a", 70000) + `"}`}},
		{"429", behaviour{status: 429}},
		{"409 duplicate with failed body", behaviour{status: 409, body: `{"status":"failed","reason":"duplicate"}`}},
		{"success with 4xx", behaviour{status: 400, body: `{"status":"success"}`}},
		{"redirect not followed", behaviour{status: 302}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeCarrier(t)
			f.postHook = func(n int) behaviour {
				if n == 1 {
					return tt.first
				}
				return asContract
			}
			h := newHarness(t, f.url(), hangTimeout)

			got := h.c.Credit(context.Background(), req("PAY0000004"))

			wantResult(t, got, Success, "")
			if posts, gets := f.counts(); posts != 2 || gets != 0 {
				t.Fatalf("carrier saw %d POSTs and %d lookups, want 2 and 0", posts, gets)
			}
			if n := f.creditsOf("PAY0000004"); n != 1 {
				t.Fatalf("credited %d times, want once", n)
			}
		})
	}
}

func TestCreditAlwaysTroubleIsUnknown(t *testing.T) {
	f := newFakeCarrier(t)
	broken := behaviour{status: 200, body: "<html>maintenance</html>"}
	f.postHook = func(int) behaviour { return broken }
	f.getHook = func(int) behaviour { return broken }
	h := newHarness(t, f.url(), fast)

	got := h.c.Credit(context.Background(), req("PAY0000005"))

	wantResult(t, got, Unknown, "no definite answer to 3 POSTs (last: HTTP 200 with an unreadable answer")
	wantResult(t, got, Unknown, "; lookup: HTTP 200 with an unreadable answer")
	if posts, gets := f.counts(); posts != 3 || gets != 1 {
		t.Fatalf("carrier saw %d POSTs and %d lookups, want 3 and 1", posts, gets)
	}
	if n := value(t, h.c.m.requests.WithLabelValues("ca", "unknown")); n != 1 {
		t.Fatalf("requests_total{outcome=unknown} = %v, want 1", n)
	}
}

// A refusal that answers a retry may be a carrier refusing a duplicate of a request it
// has credited: it is believed only after a lookup.
func TestCreditRefusedRetryIsVerified(t *testing.T) {
	tests := []struct {
		name       string
		first      behaviour // the first POST
		second     behaviour // the second POST
		want       Outcome
		wantReason string
		wantCredit int
	}{
		{"duplicate refused, lookup shows credit", behaviour{process: true, status: 503},
			behaviour{status: 200, body: `{"status":"failed","reason":"duplicate reference"}`}, Success, "", 1},
		{"refused, lookup agrees", behaviour{process: true, status: 503}, asContract, Failed, "number barred", 0},
		{"refused, no record of the unanswered POST", answer500(),
			behaviour{status: 400}, Unknown, "no record of an earlier POST", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeCarrier(t)
			if tt.want == Failed {
				f.refuse["254700000001"] = "number barred"
			}
			f.postHook = func(n int) behaviour {
				if n == 1 {
					return tt.first
				}
				return tt.second
			}
			h := newHarness(t, f.url(), fast)

			got := h.c.Credit(context.Background(), req("PAY0000006"))

			wantResult(t, got, tt.want, tt.wantReason)
			if posts, gets := f.counts(); posts != 2 || gets != 1 {
				t.Fatalf("carrier saw %d POSTs and %d lookups, want 2 and 1", posts, gets)
			}
			if n := f.creditsOf("PAY0000006"); n != tt.wantCredit {
				t.Fatalf("credited %d times, want %d", n, tt.wantCredit)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	tests := []struct {
		name       string
		known      string    // what the carrier already recorded for the reference; "" none
		refuse     bool      // the carrier refuses the number on a POST
		get        behaviour // every lookup; zero: the contract's
		want       Outcome
		wantReason string
		wantPosts  int
		wantGets   int
		wantCredit int
	}{
		{"known success", "success", false, behaviour{}, Success, "", 0, 1, 1},
		{"known failure", "insufficient stock", false, behaviour{}, Failed, "insufficient stock", 0, 1, 0},
		{"never seen: re-posted", "", false, behaviour{}, Success, "", 1, 1, 1},
		{"never seen: re-posted and refused", "", true, behaviour{}, Failed, "number barred", 1, 2, 0},
		{"lookup 500", "", false, answer500(), Unknown, "lookup: HTTP 500", 0, 1, 0},
		{"lookup 401", "success", false, behaviour{status: 401}, Unknown, "lookup: HTTP 401", 0, 1, 1},
		{"lookup broken JSON", "success", false, behaviour{status: 200, body: "{"}, Unknown, "unreadable", 0, 1, 1},
		{"lookup without status", "success", false, behaviour{status: 200, body: "{}"}, Unknown, "no status", 0, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeCarrier(t)
			if tt.known != "" {
				f.record("PAY0000007", tt.known)
			}
			if tt.refuse {
				f.refuse["254700000001"] = "number barred"
			}
			if tt.get.status != 0 {
				f.getHook = func(int) behaviour { return tt.get }
			}
			h := newHarness(t, f.url(), fast)

			got := h.c.Resolve(context.Background(), req("PAY0000007"))

			wantResult(t, got, tt.want, tt.wantReason)
			if posts, gets := f.counts(); posts != tt.wantPosts || gets != tt.wantGets {
				t.Fatalf("carrier saw %d POSTs and %d lookups, want %d and %d", posts, gets, tt.wantPosts, tt.wantGets)
			}
			if n := f.creditsOf("PAY0000007"); n != tt.wantCredit {
				t.Fatalf("credited %d times, want %d", n, tt.wantCredit)
			}
		})
	}
}

// Resolve's re-send may race a POST still on its way: a refusal of it is checked.
func TestResolveRefusedResendIsVerified(t *testing.T) {
	f := newFakeCarrier(t)
	// The lookup finds nothing; then the late original POST lands and is credited, and
	// the re-send is refused as a duplicate.
	f.postHook = func(int) behaviour {
		f.record("PAY0000008", "success")
		return behaviour{status: 200, body: `{"status":"failed","reason":"duplicate reference"}`}
	}
	h := newHarness(t, f.url(), fast)

	got := h.c.Resolve(context.Background(), req("PAY0000008"))

	wantResult(t, got, Success, "")
	if posts, gets := f.counts(); posts != 1 || gets != 2 {
		t.Fatalf("carrier saw %d POSTs and %d lookups, want 1 and 2", posts, gets)
	}
	if n := f.creditsOf("PAY0000008"); n != 1 {
		t.Fatalf("credited %d times, want once", n)
	}
}

func TestCarrierDownOpensBreaker(t *testing.T) {
	f := newFakeCarrier(t)
	down := true
	f.postHook = func(int) behaviour {
		if down {
			return answer500()
		}
		return asContract
	}
	f.getHook = f.postHook
	h := newHarness(t, f.url(), fast)
	ctx := context.Background()
	gauge := func() float64 { return value(t, h.c.m.circuitOpen.WithLabelValues("ca")) }

	// 3 POSTs and a lookup: 4 faults, still closed.
	wantResult(t, h.c.Credit(ctx, req("PAY0000011")), Unknown, "HTTP 500")
	if gauge() != 0 {
		t.Fatal("breaker open after 4 faults, want closed until 5")
	}
	// The fifth fault opens it; the rest of this Credit is not sent.
	wantResult(t, h.c.Credit(ctx, req("PAY0000012")), Unknown, reasonCircuitOpen)
	if posts, gets := f.counts(); posts+gets != 5 {
		t.Fatalf("carrier saw %d requests, want 5", posts+gets)
	}
	if gauge() != 1 {
		t.Fatal("circuit_open gauge is not 1 after 5 faults")
	}

	// Open: nothing is sent, Credit and Resolve alike, until the cooldown has passed.
	h.clock.Add(breakerCooldown - time.Second)
	wantResult(t, h.c.Credit(ctx, req("PAY0000013")), Unknown, reasonCircuitOpen)
	wantResult(t, h.c.Resolve(ctx, req("PAY0000013")), Unknown, reasonCircuitOpen)
	if posts, gets := f.counts(); posts+gets != 5 {
		t.Fatalf("carrier saw %d requests while the circuit was open, want still 5", posts+gets)
	}

	// Half-open: one trial; it fails, so the breaker opens again for a full cooldown.
	h.clock.Add(time.Second)
	wantResult(t, h.c.Credit(ctx, req("PAY0000014")), Unknown, reasonCircuitOpen)
	if posts, gets := f.counts(); posts+gets != 6 {
		t.Fatalf("carrier saw %d requests, want 6: one trial", posts+gets)
	}
	h.clock.Add(breakerCooldown - time.Second)
	wantResult(t, h.c.Credit(ctx, req("PAY0000015")), Unknown, reasonCircuitOpen)

	// The carrier is back: the next trial succeeds and closes the breaker.
	down = false
	h.clock.Add(time.Second)
	wantResult(t, h.c.Credit(ctx, req("PAY0000016")), Success, "")
	if gauge() != 0 {
		t.Fatal("circuit_open gauge is not 0 after a successful trial")
	}
	wantResult(t, h.c.Credit(ctx, req("PAY0000017")), Success, "")
}

func TestCarrierUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: connections are refused
	h := newHarness(t, "http://"+addr+"/v1/topup", fast)
	ctx := context.Background()

	wantResult(t, h.c.Credit(ctx, req("PAY0000021")), Unknown, "carrier unreachable")
	wantResult(t, h.c.Credit(ctx, req("PAY0000022")), Unknown, reasonCircuitOpen)
	if !h.c.br.isOpen() {
		t.Fatal("breaker closed after 5 refused connections")
	}
}

func TestRefusalsDoNotTripBreaker(t *testing.T) {
	f := newFakeCarrier(t)
	f.refuse["254700000001"] = "number barred"
	h := newHarness(t, f.url(), fast)

	for i := range 2 * breakerThreshold {
		wantResult(t, h.c.Credit(context.Background(), req("PAY00000"+string(rune('A'+i))+"X")), Failed, "number barred")
	}
	if h.c.br.isOpen() {
		t.Fatal("definite refusals opened the breaker")
	}
}

func TestCreditCancelled(t *testing.T) {
	tests := []struct {
		name   string
		before bool // cancelled before the call, else while the carrier hangs
	}{
		{"before the call", true},
		{"during a POST", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeCarrier(t)
			entered := make(chan struct{}, 1)
			f.postHook = func(int) behaviour {
				entered <- struct{}{}
				return hangOnly
			}
			h := newHarness(t, f.url(), fast)
			ctx, cancel := context.WithCancel(context.Background())
			if tt.before {
				cancel()
			} else {
				go func() { <-entered; cancel() }()
			}
			defer cancel()

			got := h.c.Credit(ctx, req("PAY0000031"))

			wantResult(t, got, Unknown, "cancelled")
			posts, _ := f.counts()
			if tt.before && posts != 0 || !tt.before && posts != 1 {
				t.Fatalf("carrier saw %d POSTs", posts)
			}
			h.c.br.mu.Lock()
			faults := h.c.br.faults
			h.c.br.mu.Unlock()
			if faults != 0 {
				t.Fatalf("our own cancellation counted as %d carrier faults", faults)
			}
		})
	}
}

func TestBadRequestIsNotSent(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Request)
		want string
	}{
		{"no reference", func(r *Request) { r.Reference = "" }, "reference"},
		{"reference with a slash", func(r *Request) { r.Reference = "../x" }, "reference"},
		{"reference too long", func(r *Request) { r.Reference = strings.Repeat("A", 65) }, "reference"},
		{"msisdn with a plus", func(r *Request) { r.MSISDN = "+254700000001" }, "msisdn"},
		{"msisdn too short", func(r *Request) { r.MSISDN = "2547" }, "msisdn"},
		{"zero amount", func(r *Request) { r.Amount = 0 }, "amount"},
		{"negative amount", func(r *Request) { r.Amount = -5 }, "amount"},
		{"lower-case currency", func(r *Request) { r.Currency = "kes" }, "currency"},
		{"no currency", func(r *Request) { r.Currency = "" }, "currency"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeCarrier(t)
			h := newHarness(t, f.url(), fast)
			r := req("PAY0000041")
			tt.mod(&r)

			if err := r.Validate(); !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want ErrBadRequest about %s", err, tt.want)
			}
			wantResult(t, h.c.Credit(context.Background(), r), Failed, "airtime: bad request: "+tt.want)
			wantResult(t, h.c.Resolve(context.Background(), r), Failed, "airtime: bad request: "+tt.want)
			if posts, gets := f.counts(); posts+gets != 0 {
				t.Fatalf("a bad request reached the carrier (%d POSTs, %d lookups)", posts, gets)
			}
		})
	}
	if err := req("PAY0000041").Validate(); err != nil {
		t.Fatalf("valid request: %v", err)
	}
}

func TestLogsMaskNumberAndHideToken(t *testing.T) {
	f := newFakeCarrier(t)
	f.postHook = func(n int) behaviour {
		if n == 1 {
			return behaviour{status: 401}
		}
		return answer500()
	}
	h := newHarness(t, f.url(), fast)
	h.c.Credit(context.Background(), req("PAY0000051"))
	h.c.Resolve(context.Background(), req("PAY0000051"))

	logs := h.logs.String()
	for _, secret := range []string{testToken, "254700000001"} {
		if strings.Contains(logs, secret) {
			t.Fatalf("logs contain %q:\n%s", secret, logs)
		}
	}
	for _, want := range []string{`"msisdn":"2547****001"`, `"carrier":"ca"`, `"reference":"PAY0000051"`, `"outcome":"failed"`} {
		if !strings.Contains(logs, want) {
			t.Fatalf("logs lack %s:\n%s", want, logs)
		}
	}
}

func TestLookupPathKeepsQuery(t *testing.T) {
	f := newFakeCarrier(t)
	f.record("PAY0000061", "success")
	h := newHarness(t, f.url()+"?channel=switch", fast)

	wantResult(t, h.c.Resolve(context.Background(), req("PAY0000061")), Success, "")
}
