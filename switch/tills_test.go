package payswitch_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payswitch/payswitch/internal/pgtest"
	"github.com/payswitch/payswitch/store"
	. "github.com/payswitch/payswitch/switch"
)

// tills is a Tills in memory: stores by till, each open unless closed says otherwise.
type tills struct {
	mu     sync.Mutex // guards byCode, closed, reads
	byCode map[string]Till
	closed map[string]bool
	reads  int // Till calls: what the engine's cache saves
}

var _ Tills = (*tills)(nil)

func (f *tills) add(t Till) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.byCode == nil {
		f.byCode, f.closed = map[string]Till{}, map[string]bool{}
	}
	f.byCode[t.Code] = t
}

func (f *tills) close(storeID string, closed bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed[storeID] = closed
}

func (f *tills) Till(_ context.Context, code string) (Till, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	t, ok := f.byCode[code]
	if !ok {
		return Till{}, ErrUnknownTill
	}
	t.Closed = f.closed[t.Store]
	return t, nil
}

func (f *tills) TillByMSISDN(_ context.Context, msisdn string) (Till, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, t := range f.byCode {
		if t.MSISDN == msisdn && msisdn != "" {
			return t, nil
		}
	}
	return Till{}, ErrUnknownTill
}

func (f *tills) StoreOpen(_ context.Context, _ store.Tx, id string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, t := range f.byCode {
		if t.Store == id {
			return !f.closed[id], nil
		}
	}
	return false, nil
}

// salesBook is a SalesReader that answers fixed totals and remembers what it was asked.
type salesBook struct {
	mu        sync.Mutex // guards asked
	asked     []string   // "merchant/store"
	from, to  time.Time
	answering SalesTotals
}

func (s *salesBook) Totals(_ context.Context, merchantID, storeID string, from, to time.Time) (SalesTotals, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.asked = append(s.asked, merchantID+"/"+storeID)
	s.from, s.to = from, to
	return s.answering, nil
}

const westlandsPhone = "254700000950"

// newTillHarness is the harness with Mama Mboga (55501) and her store Westlands, till
// 55611, whose phone is westlandsPhone.
func newTillHarness(t *testing.T) (*harness, *tills, *salesBook) {
	h := newHarness(t)
	f, sb := &tills{}, &salesBook{}
	h.rig.Opts.Tills, h.rig.Opts.Sales = f, sb
	h.restart()
	m := h.merchant("55501", mama)
	f.add(Till{Code: "55611", Store: "st_west", Merchant: m.ID, Name: "Westlands", MSISDN: westlandsPhone})
	f.add(Till{Code: "55612", Store: "st_east", Merchant: m.ID, Name: "Eastleigh"})
	return h, f, sb
}

// A till is paid like the merchant's code: the money lands in the merchant's account,
// the payment records the store, the payer reads "Merchant - Store (till)", and the
// store's phone gets the notice (without the merchant's balance) instead of the
// merchant's phone.
func TestPayTill(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h, f, _ := newTillHarness(t)
		w := h.wallet(alice, 100000)
		m, err := h.engine.Merchant(context.Background(), "55611")
		if err != nil || m.Name != "Mama Mboga - Westlands" || m.Code != "55611" {
			t.Fatalf("Merchant(55611) = %+v, %v", m, err)
		}
		merchantMessages := h.count(mama)

		h.sms(alice, "PAY 55611 150")
		if msg := h.last(alice); !strings.Contains(msg.Text, "Mama Mboga - Westlands (55611)") {
			t.Fatalf("code SMS %q", msg.Text)
		}
		p := h.pendingOf(alice)
		if p == nil || p.Store != "st_west" || p.PayeeAccount != m.ID || p.PayeeCode != "55611" || p.PayeeMSISDN != westlandsPhone {
			t.Fatalf("pending %+v", p)
		}
		h.sms(alice, h.code(alice))
		got := h.payment(p.ID)
		if got.State != StateCompleted || got.Store != "st_west" || got.View().Store != "st_west" {
			t.Fatalf("payment %+v", got)
		}
		if b := h.balance(m.ID); b.Posted != 15000 {
			t.Fatalf("merchant balance %+v", b)
		}
		if b := h.balance(w.ID); b.Posted != 85000 {
			t.Fatalf("payer balance %+v", b)
		}
		notice := h.last(westlandsPhone)
		if notice.Purpose != "notice" || !strings.Contains(notice.Text, "Mama Mboga - Westlands (55611) received KES 150.00") ||
			strings.Contains(notice.Text, "balance") {
			t.Fatalf("store notice %q (%s)", notice.Text, notice.Purpose)
		}
		if h.count(mama) != merchantMessages {
			t.Fatalf("the merchant's phone was told too: %q", h.last(mama).Text)
		}

		// The till is read once: the engine keeps what never changes of a store.
		h.sms(alice, "PAY 55611 100")
		h.sms(alice, h.code(alice))
		if f.reads != 1 {
			t.Fatalf("the till was read %d times", f.reads)
		}
		h.assertBalanced()
	})
}

// A store without a phone: the merchant's phone gets the store's notice.
func TestPayTillWithoutPhone(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h, _, _ := newTillHarness(t)
		h.wallet(alice, 100000)
		h.sms(alice, "PAY 55612 150")
		p := h.pendingOf(alice)
		h.sms(alice, h.code(alice))
		if got := h.payment(p.ID); got.Store != "st_east" || got.State != StateCompleted {
			t.Fatalf("payment %+v", got)
		}
		if n := h.last(mama); !strings.Contains(n.Text, "Mama Mboga - Eastleigh (55612) received KES 150.00") {
			t.Fatalf("notice %q", n.Text)
		}
	})
}

// A closed store's till refuses with a clear SMS and holds nothing; reopened, it is
// paid again. The status is read in the payment's transaction, not kept.
func TestPayClosedTill(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h, f, _ := newTillHarness(t)
		w := h.wallet(alice, 100000)
		h.sms(alice, "PAY 55611 150") // the till is seen, and kept, while open
		h.sms(alice, "CANCEL")
		f.close("st_west", true)
		h.sms(alice, "PAY 55611 150")
		if msg := h.last(alice); !strings.Contains(msg.Text, "Mama Mboga - Westlands (55611) is closed") ||
			!strings.Contains(msg.Text, "Nothing was paid") {
			t.Fatalf("refusal %q", msg.Text)
		}
		if p := h.pendingOf(alice); p != nil {
			t.Fatalf("a payment waits: %+v", p)
		}
		if b := h.balance(w.ID); b.Held != 0 || b.Posted != 100000 {
			t.Fatalf("payer balance %+v", b)
		}
		out, err := h.engine.Request(context.Background(), Request{Channel: ChannelUSSD, Type: MerchantPayment,
			Payer: alice, Merchant: "55611", Amount: 15000})
		if err != nil || out.Problem != ProblemStoreClosed {
			t.Fatalf("USSD request: %+v, %v", out, err)
		}
		f.close("st_west", false)
		h.sms(alice, "PAY 55611 150")
		if p := h.pendingOf(alice); p == nil || p.Store != "st_west" {
			t.Fatalf("reopened: %+v", p)
		}
	})
}

// BUY at a till prices from the merchant's catalogue.
func TestBuyAtTill(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h, _, _ := newTillHarness(t)
		h.wallet(alice, 100000)
		m, _ := h.engine.Merchant(context.Background(), "55501")
		h.catalog.add(m.ID, Product{Code: "12", Name: "Sugar 1kg", Price: 15000})
		h.sms(alice, "BUY 55611 12 2")
		if msg := h.last(alice); !strings.Contains(msg.Text, "KES 300.00 to Mama Mboga - Westlands (55611) for 2 x Sugar 1kg") {
			t.Fatalf("code SMS %q", msg.Text)
		}
		if p := h.pendingOf(alice); p == nil || p.Store != "st_west" || p.Amount != 30000 {
			t.Fatalf("pending %+v", p)
		}
	})
}

// SALES answers the merchant's phone with its day, a store's phone with the store's,
// and any other number with the same neutral refusal.
func TestSalesSMS(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		h, _, sb := newTillHarness(t)
		h.wallet(alice, 100000)
		sb.answering = SalesTotals{Payments: 3, Gross: 45000, Refunds: 5000, Net: 40000}

		h.sms(mama, "sales")
		want := "Sales 21/11 Mama Mboga: 3 payments, gross KES 450.00, refunds KES 50.00, net KES 400.00."
		if got := h.last(mama).Text; got != want {
			t.Fatalf("merchant's SALES = %q\nwant %q", got, want)
		}
		day := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
		if !sb.from.Equal(day) || !sb.to.Equal(day.AddDate(0, 0, 1)) {
			t.Fatalf("asked %s to %s", sb.from, sb.to)
		}
		h.sms(westlandsPhone, "SALES")
		if got := h.last(westlandsPhone).Text; !strings.HasPrefix(got, "Sales 21/11 Mama Mboga - Westlands: 3 payments") {
			t.Fatalf("store's SALES = %q", got)
		}
		if len(sb.asked) != 2 || !strings.HasSuffix(sb.asked[0], "/") || !strings.HasSuffix(sb.asked[1], "/st_west") {
			t.Fatalf("asked %v", sb.asked)
		}
		h.sms(alice, "SALES")
		h.sms("254700000777", "SALES")
		a, b := h.last(alice).Text, h.last("254700000777").Text
		if a != b || !strings.Contains(a, "SALES answers only") || len(sb.asked) != 2 {
			t.Fatalf("refusals %q, %q; asked %v", a, b, sb.asked)
		}
	})
}
