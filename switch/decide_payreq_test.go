package payswitch

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/payswitch/payswitch/ledger"
)

// requestRules are testRules with the request limits of config's defaults.
func requestRules(t testing.TB) *rules {
	r := testRules(t)
	r.cfg.Requests = RequestLimits{DefaultTTL: 10 * time.Minute, MaxTTL: 24 * time.Hour, PerMerchantPerMinute: 600,
		PerNumberPerDay: 10}
	return r
}

func TestCheckPaymentRequest(t *testing.T) {
	r := requestRules(t)
	ok := PaymentRequest{Merchant: "ACSHOP", MSISDN: "0700000001", Amount: 15000, Reference: "INV-7",
		Description: " Order 7 "}
	cases := []struct {
		name string
		edit func(q *PaymentRequest)
		err  string // "" for none: the request is well formed
		want func(q payRequest) bool
	}{
		{name: "a merchant's request, normalised, with the default ttl", want: func(q payRequest) bool {
			return q.Type == MerchantPayment && q.Payer == "254700000001" && q.TTL == 10*time.Minute &&
				q.Description == "Order 7" && q.Key == "request:ACSHOP:INV-7"
		}},
		{name: "items instead of an amount", edit: func(q *PaymentRequest) {
			q.Amount, q.Items = 0, []ItemRequest{{Product: "12", Quantity: 2}, {Product: "7", Quantity: maxQuantity}}
		}, want: func(q payRequest) bool { return len(q.Items) == 2 && q.Amount == 0 }},
		{name: "an operator's airtime reminder", edit: func(q *PaymentRequest) { q.Type, q.Merchant, q.Operator = AirtimePayment, "", true },
			want: func(q payRequest) bool { return q.Type == AirtimePayment && q.Key == "reminder:INV-7" }},
		{name: "the shortest ttl", edit: func(q *PaymentRequest) { q.TTL = time.Minute }},
		{name: "the longest ttl", edit: func(q *PaymentRequest) { q.TTL = 24 * time.Hour }},
		{name: "unknown type", edit: func(q *PaymentRequest) { q.Type = TransferPayment }, err: "type"},
		{name: "no merchant", edit: func(q *PaymentRequest) { q.Merchant = " " }, err: "merchant: required"},
		{name: "airtime from a merchant's key", edit: func(q *PaymentRequest) { q.Type, q.Merchant = AirtimePayment, "" }, err: "operator"},
		{name: "airtime naming a merchant", edit: func(q *PaymentRequest) { q.Type, q.Operator = AirtimePayment, true }, err: "has none"},
		{name: "no reference", edit: func(q *PaymentRequest) { q.Reference = "" }, err: "reference"},
		{name: "a reference with spaces", edit: func(q *PaymentRequest) { q.Reference = "INV 7" }, err: "reference"},
		{name: "not a number", edit: func(q *PaymentRequest) { q.MSISDN = "07000" }, err: "msisdn"},
		{name: "amount and items", edit: func(q *PaymentRequest) { q.Items = []ItemRequest{{Product: "12", Quantity: 1}} }, err: "not both"},
		{name: "neither amount nor items", edit: func(q *PaymentRequest) { q.Amount = 0 }, err: "one is required"},
		{name: "below the smallest payment", edit: func(q *PaymentRequest) { q.Amount = 99 }, err: "amount"},
		{name: "above the largest payment", edit: func(q *PaymentRequest) { q.Amount = 15000001 }, err: "amount"},
		{name: "a negative amount", edit: func(q *PaymentRequest) { q.Amount = -100 }, err: "amount"},
		{name: "too many items", edit: func(q *PaymentRequest) {
			q.Amount, q.Items = 0, make([]ItemRequest, maxItems+1)
		}, err: "at most 20"},
		{name: "a bad product code", edit: func(q *PaymentRequest) { q.Amount, q.Items = 0, []ItemRequest{{Product: "1234567", Quantity: 1}} },
			err: "items[0].product"},
		{name: "a product twice", edit: func(q *PaymentRequest) {
			q.Amount, q.Items = 0, []ItemRequest{{Product: "12", Quantity: 1}, {Product: "12", Quantity: 1}}
		}, err: "items[1].product: 12 is listed twice"},
		{name: "quantity zero", edit: func(q *PaymentRequest) { q.Amount, q.Items = 0, []ItemRequest{{Product: "12"}} },
			err: "items[0].quantity"},
		{name: "quantity too large", edit: func(q *PaymentRequest) {
			q.Amount, q.Items = 0, []ItemRequest{{Product: "12", Quantity: maxQuantity + 1}}
		}, err: "items[0].quantity"},
		{name: "ttl too short", edit: func(q *PaymentRequest) { q.TTL = 59 * time.Second }, err: "ttl"},
		{name: "ttl too long", edit: func(q *PaymentRequest) { q.TTL = 24*time.Hour + time.Second }, err: "ttl"},
		{name: "ttl negative", edit: func(q *PaymentRequest) { q.TTL = -time.Minute }, err: "ttl"},
		{name: "description too long", edit: func(q *PaymentRequest) { q.Description = strings.Repeat("é", 61) }, err: "description"},
		{name: "description of 60 characters", edit: func(q *PaymentRequest) { q.Description = strings.Repeat("é", 60) }},
		{name: "description with a control character", edit: func(q *PaymentRequest) { q.Description = "Order\x1b[2J" }, err: "description"},
		{name: "description with a line break", edit: func(q *PaymentRequest) { q.Description = "Order\n7" }, err: "description"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := ok
			if c.edit != nil {
				c.edit(&req)
			}
			q, err := r.checkPaymentRequest(req)
			switch {
			case c.err == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.err != "" && (!errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.err)):
				t.Fatalf("%v, want ErrInvalid naming %q", err, c.err)
			case c.want != nil && !c.want(q):
				t.Fatalf("checked as %+v", q)
			}
		})
	}
}

// payDrafted is the draft of Mama Mboga's request to alice for KES 150.
func payDrafted() *payDraft {
	return &payDraft{merchant: ledger.Account{ID: "ACSHOP", Type: ledger.Merchant, Name: "Mama Mboga", Code: "55501"},
		p: &Payment{ID: "PAYRRRRRRR", Type: MerchantPayment, Channel: ChannelAPI, State: StateRequested,
			PayerMSISDN: "254700000001", PayeeAccount: "ACSHOP", PayeeName: "Mama Mboga", PayeeCode: "55501",
			Amount: 15000, Currency: "KES", Reference: "INV-7"},
		text: "PAYRRRRRRR: Mama Mboga (55501) requests KES 150.00. Reply 123456 within 10 min to pay"}
}

func TestDecideRequestToPay(t *testing.T) {
	r := requestRules(t)
	minute, day := decideNow.Truncate(time.Minute).UnixMicro(), r.startOfDay(decideNow).UnixMicro()
	base := func() payRequestSnapshot {
		return payRequestSnapshot{Now: decideNow, Draft: payDrafted(),
			Req: payRequest{Type: MerchantPayment, Merchant: "ACSHOP", Payer: "254700000001", Amount: 15000,
				Reference: "INV-7", Key: "request:ACSHOP:INV-7", TTL: 10 * time.Minute},
			Payer:         &ledger.Account{ID: "ACPAYER", Type: ledger.Wallet, Status: ledger.Active},
			Merchant:      &ledger.Account{ID: "ACSHOP", Type: ledger.Merchant, Status: ledger.Active},
			MerchantCount: requestCount{Subject: "merchant:ACSHOP"}, NumberCount: requestCount{Subject: "number:254700000001"}}
	}
	earlier := func() *Payment {
		p := payDrafted().p
		p.ID, p.State = "PAYEARLIER", StateDeclined
		return p
	}
	cases := []struct {
		name   string
		snap   func(s *payRequestSnapshot)
		err    error
		msg    string
		step   decisionStep
		prev   bool     // the answer is the earlier payment
		counts []string // the counts stored, "subject=count"
	}{
		{name: "sent, counted against the merchant's minute and the number's day",
			counts: []string{"merchant:ACSHOP=1", "number:254700000001=1"}},
		{name: "the same reference again is the earlier request",
			snap: func(s *payRequestSnapshot) { s.Prev, s.Payer = earlier(), nil }, prev: true},
		{name: "the reference for another amount", snap: func(s *payRequestSnapshot) { s.Prev = earlier(); s.Prev.Amount = 100 },
			err: ErrConflict, msg: "reference \"INV-7\""},
		{name: "the reference for another number", snap: func(s *payRequestSnapshot) { s.Prev = earlier(); s.Prev.PayerMSISDN = "254700000002" },
			err: ErrConflict},
		{name: "the reference for items", snap: func(s *payRequestSnapshot) {
			s.Prev = earlier()
			s.Prev.Items = []Item{{Product: "12", Quantity: 1, Price: 15000}}
		}, err: ErrConflict},
		{name: "a number without an account", snap: func(s *payRequestSnapshot) { s.Payer = nil }, err: ErrInvalid, msg: "has no wallet"},
		{name: "a merchant's own number is no payer", snap: func(s *payRequestSnapshot) { s.Payer.Type = ledger.Merchant },
			err: ErrInvalid, msg: "has no wallet"},
		{name: "an agent may pay", snap: func(s *payRequestSnapshot) { s.Payer.Type = ledger.Agent },
			counts: []string{"merchant:ACSHOP=1", "number:254700000001=1"}},
		{name: "a frozen payer", snap: func(s *payRequestSnapshot) { s.Payer.Status = ledger.Frozen }, err: ErrInvalid, msg: "frozen"},
		{name: "no such merchant", snap: func(s *payRequestSnapshot) { s.Merchant = nil }, err: ErrInvalid, msg: "no merchant"},
		{name: "not a merchant", snap: func(s *payRequestSnapshot) { s.Merchant.Type = ledger.Wallet }, err: ErrInvalid, msg: "no merchant"},
		{name: "a frozen merchant", snap: func(s *payRequestSnapshot) { s.Merchant.Status = ledger.Frozen }, err: ErrInvalid, msg: "frozen"},
		{name: "airtime with no carrier", snap: func(s *payRequestSnapshot) { s.Req.Type, s.Merchant = AirtimePayment, nil },
			err: ErrInvalid, msg: "no carrier"},
		{name: "a product not sold", snap: func(s *payRequestSnapshot) {
			s.Req.Items, s.Draft.buy.unknown, s.Draft.p = []ItemRequest{{Product: "99", Quantity: 1}}, "99", nil
		}, err: ErrUnknownProduct, msg: "99"},
		{name: "items past the largest payment", snap: func(s *payRequestSnapshot) {
			s.Req.Items, s.Draft.buy.total, s.Draft.p = []ItemRequest{{Product: "12", Quantity: 9999}}, math.MaxInt64, nil
		}, err: ErrInvalid, msg: "more than the largest payment"},
		{name: "items below the smallest payment", snap: func(s *payRequestSnapshot) {
			s.Req.Items, s.Draft.buy.total, s.Draft.p = []ItemRequest{{Product: "12", Quantity: 1}}, 50, nil
		}, err: ErrInvalid, msg: "less than the smallest payment"},
		{name: "the number refused the merchant's requests", snap: func(s *payRequestSnapshot) { s.Stopped = true },
			err: ErrPayerStopped},
		{name: "a request waits for the number", snap: func(s *payRequestSnapshot) {
			s.Waiting = earlier()
			s.Waiting.State, s.Waiting.ExpiresAt = StateRequested, decideNow.Add(time.Second)
		}, err: ErrPayerBusy, msg: "PAYEARLIER"},
		{name: "an overdue request is expired first", snap: func(s *payRequestSnapshot) {
			s.Waiting = earlier()
			s.Waiting.State, s.Waiting.ExpiresAt = StateRequested, decideNow
		}, step: overdueStep},
		{name: "the merchant's minute is full", snap: func(s *payRequestSnapshot) {
			s.MerchantCount.Start, s.MerchantCount.Count = minute, 600
		}, err: ErrRateLimited, msg: "a minute"},
		{name: "the merchant's last minute counts nothing now", snap: func(s *payRequestSnapshot) {
			s.MerchantCount.Start, s.MerchantCount.Count = minute-60e6, 600
		}, counts: []string{"merchant:ACSHOP=1", "number:254700000001=1"}},
		{name: "the number's day is full", snap: func(s *payRequestSnapshot) {
			s.NumberCount.Start, s.NumberCount.Count = day, 10
		}, err: ErrRateLimited, msg: "10 requests today"},
		{name: "the number's ninth of the day", snap: func(s *payRequestSnapshot) {
			s.NumberCount.Start, s.NumberCount.Count = day, 9
			s.MerchantCount.Start, s.MerchantCount.Count = minute, 5
		}, counts: []string{"merchant:ACSHOP=6", "number:254700000001=10"}},
		{name: "limits off count nothing", snap: func(s *payRequestSnapshot) {
			s.NumberCount.Start, s.NumberCount.Count = day, 10
		}, counts: nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rr := *r
			if c.name == "limits off count nothing" {
				rr.cfg.Requests.PerMerchantPerMinute, rr.cfg.Requests.PerNumberPerDay = 0, 0
			}
			s := base()
			if c.snap != nil {
				c.snap(&s)
			}
			d := rr.requestToPay(s)
			switch {
			case c.err != nil:
				if !errors.Is(d.Err, c.err) || !strings.Contains(d.Err.Error(), c.msg) || d.Insert || len(d.Messages) > 0 {
					t.Fatalf("decision %+v, want %v naming %q and nothing written", d, c.err, c.msg)
				}
				return
			case d.Err != nil:
				t.Fatalf("refused: %v", d.Err)
			case d.Step != c.step:
				t.Fatalf("step %v, want %v", d.Step, c.step)
			case c.step != noStep:
				return
			case c.prev:
				if d.Outcome.Payment == nil || d.Outcome.Payment.ID != "PAYEARLIER" || d.Insert || len(d.Messages) > 0 {
					t.Fatalf("decision %+v, want the earlier request and nothing written", d)
				}
				return
			}
			var counts []string
			for _, n := range d.Counts {
				counts = append(counts, n.Subject+"="+strconv.Itoa(n.Count))
			}
			if strings.Join(counts, ",") != strings.Join(c.counts, ",") {
				t.Errorf("counts %v, want %v", counts, c.counts)
			}
			p := d.Payment
			if !d.Insert || d.RequestKey != "request:ACSHOP:INV-7" || d.Issue == nil || p.State != StateRequested ||
				p.PayerAccount != "ACPAYER" || !p.ExpiresAt.Equal(decideNow.Add(10*time.Minute)) || d.Post || d.Transfer != nil ||
				d.AddDaily {
				t.Fatalf("decision %+v, payment %+v", d, p)
			}
			if got := purposes(d.Messages); got != "request" || d.Messages[0].To != "254700000001" || !d.Messages[0].Receipt {
				t.Fatalf("messages %+v", d.Messages)
			}
		})
	}
}

func TestItemsTotal(t *testing.T) {
	for _, c := range []struct {
		name  string
		items []Item
		total int64
		ok    bool
	}{
		{"none", nil, 0, true},
		{"one", []Item{{Price: 15000, Quantity: 2}}, 30000, true},
		{"two", []Item{{Price: 15000, Quantity: 2}, {Price: 2500, Quantity: 1}}, 32500, true},
		{"up to the most", []Item{{Price: maxAmount, Quantity: 1}}, maxAmount, true},
		{"a line past the most", []Item{{Price: maxAmount/9999 + 1, Quantity: 9999}}, 0, false},
		{"a line that would overflow int64", []Item{{Price: math.MaxInt64 / 2, Quantity: 3}}, 0, false},
		{"a sum past the most", []Item{{Price: maxAmount, Quantity: 1}, {Price: 1, Quantity: 1}}, 0, false},
		{"a free item", []Item{{Price: 0, Quantity: 1}}, 0, false},
	} {
		total, ok := itemsTotal(c.items)
		if total != c.total || ok != c.ok {
			t.Errorf("%s: %d %v, want %d %v", c.name, total, ok, c.total, c.ok)
		}
	}
}

func TestValidityAndWhat(t *testing.T) {
	for d, want := range map[time.Duration]string{time.Minute: "1 min", 10 * time.Minute: "10 min",
		90*time.Second + time.Minute: "3 min", 119 * time.Minute: "119 min", 2 * time.Hour: "2 h",
		24 * time.Hour: "24 h", 150 * time.Minute: "2 h 30 min"} {
		if got := validity(d); got != want {
			t.Errorf("validity(%v) = %q, want %q", d, got, want)
		}
	}
	items := []Item{{Name: "Sugar 1kg", Quantity: 2}, {Name: "Salt", Quantity: 1}}
	for _, c := range []struct {
		desc  string
		items []Item
		want  string
	}{
		{"Order 7", nil, "Order 7"},
		{"", items, "2 x Sugar 1kg, 1 x Salt"},
		{"Order 7", items, "Order 7: 2 x Sugar 1kg, 1 x Salt"},
		{"", nil, ""},
	} {
		if got := requestWhat(c.desc, c.items); got != c.want {
			t.Errorf("requestWhat(%q, %v) = %q, want %q", c.desc, c.items, got, c.want)
		}
	}
}
