package console

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/ledger"
)

// bizBackend is the stub with a payment held in escrow (PAYESCROW1), a completed
// merchant payment with a refund (PAYSHOP001), a wallet at tier 1 with a tier change in
// its history, and the writes the console asked of it. refuse, when set, is the
// engine's refusal of the next write.
type bizBackend struct {
	stubBackend
	mu      sync.Mutex
	settled []string // id/action/reason/actor
	refunds []RefundRequest
	tiers   []TierChange
	refuse  error
}

var bizNow = time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)

func (b *bizBackend) Payment(_ context.Context, id string) (PaymentDetail, error) {
	p := Payment{ID: id, Type: "merchant_payment", Channel: "sms", Currency: "KES", Amount: 15000,
		PayerAccount: "ACPAYER", PayeeAccount: "ACSHOP", PayeeName: "Shop <i>", PayeeCode: "55501",
		CreatedAt: bizNow, UpdatedAt: bizNow}
	d := PaymentDetail{Accounts: map[string]ledger.Account{}}
	switch id {
	case "PAYESCROW1":
		p.State, p.Escrow, p.ReleaseAt, p.Risk, p.RiskRules = "in_escrow", true, bizNow.Add(168*time.Hour), "high", "amount,new_payee"
	case "PAYSHOP001":
		p.State, p.Refunded, p.Fee, p.Store, p.Risk = "completed", 5000, 700, "ST-WESTLANDS", "normal"
		d.Refunds = []Refund{{ID: "RFONE00001", Reference: "RF-1", Reason: "torn <bag>", Actor: "ops", Amount: 5000,
			Currency: "KES", TransferID: "TR1", CreatedAt: bizNow}}
	default:
		return PaymentDetail{}, ErrNotFound
	}
	d.Payment = p
	d.Auth = []AuthEvent{{Time: bizNow, Event: "issued", Channel: "sms", MSISDN: "2547****001", Detail: "risk high: amount"},
		{Time: bizNow, Event: "blocked", Channel: "sms", MSISDN: "2547****001"},
		{Time: bizNow, Event: "lock_refused", Channel: "sms", MSISDN: "2547****001"}}
	return d, nil
}

func (b *bizBackend) Account(_ context.Context, id string) (ledger.Account, error) {
	if id == "ACWALLET" {
		return ledger.Account{ID: id, Type: ledger.Wallet, Name: "Amina", MSISDN: "254700000001", Status: ledger.Active, Currency: "KES"}, nil
	}
	return ledger.Account{}, ErrNotFound
}

func (b *bizBackend) AccountTier(context.Context, string) (int, error) { return 1, nil }

func (b *bizBackend) AccountChanges(context.Context, string, int) ([]AccountChange, error) {
	return []AccountChange{{At: bizNow, Actor: "ops", Field: "tier", Old: "1", New: "2", Reason: "national id seen"},
		{At: bizNow, Actor: "ops", Field: "id_number", Old: "none", New: "on file", Reason: "national id seen"}}, nil
}

func (b *bizBackend) takeRefusal() error {
	err := b.refuse
	b.refuse = nil
	return err
}

func (b *bizBackend) SettleEscrow(_ context.Context, id, action, reason, actor string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.takeRefusal(); err != nil {
		return err
	}
	b.settled = append(b.settled, id+"/"+action+"/"+reason+"/"+actor)
	return nil
}

func (b *bizBackend) Refund(_ context.Context, r RefundRequest) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.takeRefusal(); err != nil {
		return false, err
	}
	b.refunds = append(b.refunds, r)
	return len(b.refunds) == 1, nil
}

func (b *bizBackend) SetAccountTier(_ context.Context, c TierChange) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.takeRefusal(); err != nil {
		return err
	}
	b.tiers = append(b.tiers, c)
	return nil
}

func (b *bizBackend) writes() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.settled) + len(b.refunds) + len(b.tiers)
}

// syncBuffer is a log sink the handlers write to while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.buf.String() }

// bizRig is a console over a bizBackend with an operator's and an auditor's sessions.
type bizRig struct {
	t        *testing.T
	b        *bizBackend
	srv      *httptest.Server
	log      *syncBuffer
	ops, aud *http.Client
}

func newBizRig(t *testing.T) *bizRig {
	t.Helper()
	rig := &bizRig{t: t, b: &bizBackend{}, log: &syncBuffer{}}
	c, err := New(rig.b, Config{Now: func() time.Time { return bizNow }, Log: zerolog.New(rig.log),
		Tokens: []Token{{Name: "ops", Token: "ops-secret", Role: Operator}, {Name: "aud", Token: "aud-secret", Role: Auditor}}})
	if err != nil {
		t.Fatal(err)
	}
	rig.srv = httptest.NewServer(c)
	t.Cleanup(rig.srv.Close)
	rig.ops, rig.aud = client(), client()
	for cl, tok := range map[*http.Client]string{rig.ops: "ops-secret", rig.aud: "aud-secret"} {
		if code := signIn(t, cl, rig.srv.URL, tok); code != http.StatusSeeOther {
			t.Fatalf("sign in %s: %d", tok, code)
		}
	}
	return rig
}

func (rig *bizRig) get(cl *http.Client, path string) (int, string) {
	rig.t.Helper()
	resp, err := cl.Get(rig.srv.URL + path)
	if err != nil {
		rig.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// post sends form from page's form (its CSRF token added unless form has one).
func (rig *bizRig) post(cl *http.Client, page, path string, form url.Values) (*http.Response, string) {
	rig.t.Helper()
	if _, ok := form["csrf"]; !ok {
		_, body := rig.get(cl, page)
		m := csrfRe.FindStringSubmatch(body)
		if m == nil {
			rig.t.Fatalf("no CSRF token on %s", page)
		}
		form.Set("csrf", m[1])
	}
	resp, err := cl.PostForm(rig.srv.URL+path, form)
	if err != nil {
		rig.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// TestPaymentPageShowsBusiness: the payment page shows the fee, what was refunded, the
// store, the escrow and its release time, the risk grade with its rules, the refunds,
// and the authentication history's events by readable names, all escaped; an operator
// gets the escrow and refund forms where they apply, an auditor none.
func TestPaymentPageShowsBusiness(t *testing.T) {
	rig := newBizRig(t)
	code, held := rig.get(rig.ops, "/console/payments/PAYESCROW1")
	if code != 200 {
		t.Fatalf("escrow page: %d %s", code, held)
	}
	for _, want := range []string{`id="escrow"`, "released by itself at 2026-03-08 08:00:00",
		`<span class="risk high">high</span> <span class="mono rule">amount</span> <span class="mono rule">new_payee</span>`,
		`id="escrow-release"`, `name="action" value="release"`, `id="escrow-refund"`, `name="action" value="refund"`,
		"code issued", "refused by the risk rules", "LOCK refused", "Shop &lt;i&gt;", `<dd id="fee">none</dd>`} {
		if !strings.Contains(held, want) {
			t.Errorf("escrow page lacks %q", want)
		}
	}
	if strings.Contains(held, `id="refund"`) || strings.Contains(held, `id="reverse"`) || strings.Contains(held, "Shop <i>") {
		t.Errorf("escrow page offers a refund or reversal, or shows a raw name:\n%s", held)
	}
	_, done := rig.get(rig.ops, "/console/payments/PAYSHOP001")
	for _, want := range []string{"7.00 KES", `<dd id="refunded">50.00 KES of 150.00</dd>`, `<dd class="mono" id="store">ST-WESTLANDS</dd>`,
		`id="refunds"`, "RFONE00001", "torn &lt;bag&gt;", `id="refund"`, "at most 100.00", `id="reverse"`} {
		if !strings.Contains(done, want) {
			t.Errorf("completed page lacks %q", want)
		}
	}
	if strings.Contains(done, `id="escrow-release"`) || strings.Contains(done, "torn <bag>") {
		t.Errorf("completed page offers escrow actions or shows a raw reason")
	}
	for _, id := range []string{"PAYESCROW1", "PAYSHOP001"} {
		_, page := rig.get(rig.aud, "/console/payments/"+id)
		if strings.Contains(page, `method="post" action="/console/payments`) {
			t.Errorf("an auditor is shown a write form on %s", id)
		}
	}
}

// TestEscrowActions: release and refund go to the engine with the reason and the
// operator's name; a refusal is shown escaped and nothing is asked twice; no reason,
// another action, no CSRF token or an auditor change nothing.
func TestEscrowActions(t *testing.T) {
	rig := newBizRig(t)
	page, path := "/console/payments/PAYESCROW1", "/console/payments/PAYESCROW1/escrow"
	resp, _ := rig.post(rig.ops, page, path, url.Values{"action": {"release"}, "reason": {"goods delivered"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != page+"?done=released" {
		t.Fatalf("release: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, _ = rig.post(rig.ops, page, path, url.Values{"action": {"refund"}, "reason": {"never delivered"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != page+"?done=escrow_refunded" {
		t.Fatalf("refund: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	want := []string{"PAYESCROW1/release/goods delivered/ops", "PAYESCROW1/refund/never delivered/ops"}
	if fmt.Sprint(rig.b.settled) != fmt.Sprint(want) {
		t.Fatalf("settled %q, want %q", rig.b.settled, want)
	}
	if _, p := rig.get(rig.ops, page+"?done=released"); !strings.Contains(p, "released to the merchant") {
		t.Errorf("no notice after a release")
	}

	rig.b.refuse = fmt.Errorf("%w: payment <b>PAYESCROW1</b> is not in escrow", ErrRefused)
	resp, body := rig.post(rig.ops, page, path, url.Values{"action": {"release"}, "reason": {"again"}})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "Not settled: payment &lt;b&gt;PAYESCROW1&lt;/b&gt; is not in escrow") {
		t.Fatalf("refused release: %d\n%s", resp.StatusCode, body)
	}
	for _, tc := range []struct {
		name   string
		cl     *http.Client
		form   url.Values
		status int
	}{
		{"no reason", rig.ops, url.Values{"action": {"release"}, "reason": {"  "}}, http.StatusBadRequest},
		{"a reason too long", rig.ops, url.Values{"action": {"release"}, "reason": {strings.Repeat("x", 201)}}, http.StatusBadRequest},
		{"another action", rig.ops, url.Values{"action": {"dispute"}, "reason": {"x"}}, http.StatusBadRequest},
		{"no CSRF token", rig.ops, url.Values{"action": {"release"}, "reason": {"x"}, "csrf": {"forged"}}, http.StatusForbidden},
		{"an auditor", rig.aud, url.Values{"action": {"release"}, "reason": {"x"}}, http.StatusForbidden},
	} {
		before := rig.b.writes()
		if resp, _ := rig.post(tc.cl, page, path, tc.form); resp.StatusCode != tc.status || rig.b.writes() != before {
			t.Errorf("%s: %d (want %d), writes %d → %d", tc.name, resp.StatusCode, tc.status, before, rig.b.writes())
		}
	}
}

// TestRefundAction: an operator's refund reaches the engine in minor units with its
// reference, reason and the operator's name; the same reference again says nothing more
// moved; bad amounts, no reference, a refusal, a forged form and an auditor move nothing.
func TestRefundAction(t *testing.T) {
	rig := newBizRig(t)
	page, path := "/console/payments/PAYSHOP001", "/console/payments/PAYSHOP001/refund"
	form := url.Values{"amount": {"1,000.50"}, "reference": {"RF-2"}, "reason": {"one bag torn"}}
	resp, _ := rig.post(rig.ops, page, path, form)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != page+"?done=refunded" {
		t.Fatalf("refund: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	got := rig.b.refunds[0]
	if got != (RefundRequest{PaymentID: "PAYSHOP001", Amount: 100050, Reference: "RF-2", Reason: "one bag torn", Actor: "ops"}) {
		t.Fatalf("refund asked %+v", got)
	}
	form.Del("csrf")
	if resp, _ = rig.post(rig.ops, page, path, form); resp.Header.Get("Location") != page+"?done=refund_again" {
		t.Fatalf("the same refund again: %s", resp.Header.Get("Location"))
	}
	if _, p := rig.get(rig.ops, page+"?done=refund_again"); !strings.Contains(p, "nothing more was moved") {
		t.Errorf("no notice after a repeated refund")
	}
	rig.b.refuse = fmt.Errorf("%w: refund exceeds what is left of the payment: 100.00 left", ErrRefused)
	resp, body := rig.post(rig.ops, page, path, url.Values{"amount": {"500"}, "reference": {"RF-3"}})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "Not refunded: refund exceeds what is left") {
		t.Fatalf("refused refund: %d\n%s", resp.StatusCode, body)
	}
	for _, tc := range []struct {
		name   string
		cl     *http.Client
		form   url.Values
		status int
	}{
		{"no amount", rig.ops, url.Values{"reference": {"RF-4"}}, http.StatusBadRequest},
		{"a negative amount", rig.ops, url.Values{"amount": {"-5"}, "reference": {"RF-4"}}, http.StatusBadRequest},
		{"three decimals", rig.ops, url.Values{"amount": {"1.005"}, "reference": {"RF-4"}}, http.StatusBadRequest},
		{"no reference", rig.ops, url.Values{"amount": {"5"}}, http.StatusBadRequest},
		{"a reason too long", rig.ops, url.Values{"amount": {"5"}, "reference": {"RF-4"}, "reason": {strings.Repeat("x", 201)}}, http.StatusBadRequest},
		{"no CSRF token", rig.ops, url.Values{"amount": {"5"}, "reference": {"RF-4"}, "csrf": {""}}, http.StatusForbidden},
		{"an auditor", rig.aud, url.Values{"amount": {"5"}, "reference": {"RF-4"}}, http.StatusForbidden},
	} {
		before := rig.b.writes()
		if resp, _ := rig.post(tc.cl, page, path, tc.form); resp.StatusCode != tc.status || rig.b.writes() != before {
			t.Errorf("%s: %d (want %d), writes %d → %d", tc.name, resp.StatusCode, tc.status, before, rig.b.writes())
		}
	}
}

// TestTierAction: the tier form hides the id number as it is typed and never fills it
// back in; the change reaches the engine with the operator's name; a refusal is shown
// without the id number, which no log line holds either; the Changes card reads well;
// an auditor sees no form and is refused.
func TestTierAction(t *testing.T) {
	rig := newBizRig(t)
	page, path := "/console/accounts/ACWALLET", "/console/accounts/ACWALLET/tier"
	_, body := rig.get(rig.ops, page)
	for _, want := range []string{`id="tier-form"`, `<input type="password" name="id_number" autocomplete="off"`,
		`<option value="1" selected>1 (basic)</option>`, "KYC tier: 1 (basic) → 2 (full KYC)", "id number: none → on file"} {
		if !strings.Contains(body, want) {
			t.Errorf("account page lacks %q", want)
		}
	}
	if _, aud := rig.get(rig.aud, page); strings.Contains(aud, `id="tier-form"`) {
		t.Errorf("an auditor is shown the tier form")
	}
	const idNumber = "27182818"
	resp, _ := rig.post(rig.ops, page, path, url.Values{"tier": {"2"}, "id_number": {idNumber}, "reason": {"national id seen"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != page+"?done=tier" {
		t.Fatalf("tier: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if got := rig.b.tiers[0]; got != (TierChange{Account: "ACWALLET", Tier: 2, IDNumber: idNumber, Reason: "national id seen", Actor: "ops"}) {
		t.Fatalf("tier change asked %+v", got)
	}
	// A refusal that (against the engine's rule) repeated the number still does not show it.
	rig.b.refuse = fmt.Errorf("%w: id_number: <%s> is not 5 to 20 digits", ErrRefused, idNumber)
	resp, body = rig.post(rig.ops, page, path, url.Values{"tier": {"2"}, "id_number": {idNumber}, "reason": {"again"}})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "Not changed: id_number: &lt;[id number]&gt; is not 5 to 20 digits") {
		t.Fatalf("refused tier: %d\n%s", resp.StatusCode, body)
	}
	for _, tc := range []struct {
		name   string
		cl     *http.Client
		form   url.Values
		status int
	}{
		{"tier 3", rig.ops, url.Values{"tier": {"3"}, "reason": {"x"}}, http.StatusBadRequest},
		{"no tier", rig.ops, url.Values{"reason": {"x"}}, http.StatusBadRequest},
		{"no reason", rig.ops, url.Values{"tier": {"2"}, "id_number": {idNumber}}, http.StatusBadRequest},
		{"no CSRF token", rig.ops, url.Values{"tier": {"0"}, "reason": {"x"}, "csrf": {"x"}}, http.StatusForbidden},
		{"an auditor", rig.aud, url.Values{"tier": {"2"}, "id_number": {idNumber}, "reason": {"x"}}, http.StatusForbidden},
	} {
		before := rig.b.writes()
		resp, body := rig.post(tc.cl, page, path, tc.form)
		if resp.StatusCode != tc.status || rig.b.writes() != before {
			t.Errorf("%s: %d (want %d), writes %d → %d", tc.name, resp.StatusCode, tc.status, before, rig.b.writes())
		}
		if strings.Contains(body, idNumber) {
			t.Errorf("%s: the page echoes the id number", tc.name)
		}
	}
	if strings.Contains(rig.log.String(), idNumber) {
		t.Errorf("the id number is in the log:\n%s", rig.log.String())
	}
	if !strings.Contains(rig.log.String(), "KYC tier changed") {
		t.Errorf("the tier change is not logged:\n%s", rig.log.String())
	}
}
