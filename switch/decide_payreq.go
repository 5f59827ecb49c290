package payswitch

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/otp"
	"github.com/payswitch/payswitch/outbox"
)

// A merchant's request to pay (contract section 10) is decided in two pure steps: its
// shape (checkPaymentRequest: what needs no database), then, on what the write reads,
// whether it is sent (requestToPay). Nothing is held: the payer's code, when it comes,
// checks the funds and moves them at once (completeRequest).

// maxDescriptionRunes bounds a request's description: it is read in an SMS, beside the
// merchant's name, the amount, the code and how long it is valid.
const maxDescriptionRunes = 60

// payRequest is a PaymentRequest whose shape is checked: its fields normalised, its
// defaults applied.
type payRequest struct {
	Type        PaymentType // MerchantPayment or AirtimePayment
	Merchant    string      // the merchant's account ID; "" for an airtime reminder
	Payer       string      // international form
	Amount      int64       // 0 when Items are asked for
	Items       []ItemRequest
	Reference   string
	Key         string // the payment's request key: unique per merchant and reference
	Description string
	TTL         time.Duration
	Escrow      bool // guaranteed (contract section 11)
}

// checkPaymentRequest checks what of req needs no database, in the order a caller reads
// its fields, and returns it normalised. Every refusal wraps ErrInvalid and names the
// field.
func (r *rules) checkPaymentRequest(req PaymentRequest) (payRequest, error) {
	invalid := func(format string, args ...any) (payRequest, error) {
		return payRequest{}, fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
	}
	pr := payRequest{Merchant: strings.TrimSpace(req.Merchant), Amount: req.Amount, Escrow: req.Escrow}
	switch req.Type {
	case "", MerchantPayment:
		pr.Type = MerchantPayment
		if pr.Merchant == "" {
			return invalid("merchant: required")
		}
	case AirtimePayment:
		pr.Type = AirtimePayment
		switch {
		case !req.Operator:
			return invalid("type: only an operator sends airtime reminders")
		case pr.Merchant != "":
			return invalid("merchant: an airtime reminder has none")
		case len(req.Items) > 0:
			return invalid("items: an airtime reminder has none")
		case req.Escrow:
			return invalid("escrow: only a merchant's payment can be guaranteed")
		}
	default:
		return invalid("type: %q, want merchant_payment or airtime", req.Type)
	}
	ref, err := checkReference(req.Reference)
	if err != nil {
		return payRequest{}, err
	}
	pr.Reference, pr.Key = ref, "reminder:"+ref
	if pr.Type == MerchantPayment {
		pr.Key = "request:" + pr.Merchant + ":" + ref
	}
	if pr.Payer, err = NormalizeMSISDN(req.MSISDN, r.cfg.CountryCode); err != nil {
		return invalid("msisdn: %q is not a phone number", req.MSISDN)
	}
	switch {
	case req.Amount != 0 && len(req.Items) > 0:
		return invalid("amount and items: give one, not both")
	case req.Amount == 0 && len(req.Items) == 0:
		return invalid("amount or items: one is required")
	case len(req.Items) > maxItems:
		return invalid("items: %d, at most %d", len(req.Items), maxItems)
	case len(req.Items) == 0 && (req.Amount < r.cfg.MinAmount || req.Amount > r.cfg.MaxAmount):
		return invalid("amount: %d, want %d to %d minor units", req.Amount, r.cfg.MinAmount, r.cfg.MaxAmount)
	}
	seen := map[string]bool{}
	for i, it := range req.Items {
		switch {
		case !ValidProductCode(it.Product):
			return invalid("items[%d].product: %q, want 1 to 6 digits", i, it.Product)
		case seen[it.Product]:
			return invalid("items[%d].product: %s is listed twice; give its quantity once", i, it.Product)
		case it.Quantity < 1 || it.Quantity > maxQuantity:
			return invalid("items[%d].quantity: %d, want 1 to %d", i, it.Quantity, maxQuantity)
		}
		seen[it.Product] = true
		pr.Items = append(pr.Items, it)
	}
	pr.TTL = req.TTL
	if pr.TTL == 0 {
		pr.TTL = r.cfg.Requests.DefaultTTL
	}
	if pr.TTL < minRequestTTL || pr.TTL > r.cfg.Requests.MaxTTL {
		return invalid("ttl: %v, want %v to %v", req.TTL, minRequestTTL, r.cfg.Requests.MaxTTL)
	}
	pr.Description = strings.TrimSpace(req.Description)
	switch {
	case utf8.RuneCountInString(pr.Description) > maxDescriptionRunes:
		return invalid("description: at most %d characters", maxDescriptionRunes)
	case !printable(pr.Description):
		return invalid("description: printable characters only (no line breaks or control characters)")
	}
	return pr, nil
}

// payDraft is what a request to pay can know before its write (see ahead): the merchant
// as last committed (its name and code never change), the items as the catalogue priced
// them, the airtime carrier of the payer's number, and the request to make with its code
// and its SMS. p is nil when the request cannot be made (no such merchant, a product not
// sold, a total out of bounds): the decision says why.
type payDraft struct {
	merchant ledger.Account // ID "" when there is none
	buy      purchase
	carrier  string // airtime: the carrier that sells for the payer's number, or ""

	p    *Payment
	code otp.Drawn
	text string
	push string // the USSD push screen (no code in it); "" when pushes are off
}

// requestCount is a subject's requests counted in the window that started at Start
// (Unix µs): a merchant's minute, a number's business day (request_counts).
type requestCount struct {
	Subject string
	Start   int64
	Count   int
}

// in is c's count in the window that starts at start: an older window counts nothing.
func (c requestCount) in(start int64) int {
	if c.Start < start {
		return 0
	}
	return c.Count
}

// next is c with one more request in the window that starts at start.
func (c requestCount) next(start int64) requestCount {
	if c.Start < start {
		return requestCount{Subject: c.Subject, Start: start, Count: 1}
	}
	return requestCount{Subject: c.Subject, Start: c.Start, Count: c.Count + 1}
}

// The subjects of request_counts.
func merchantSubject(id string) string   { return "merchant:" + id }
func numberSubject(msisdn string) string { return "number:" + msisdn }

// payRequestSnapshot is what deciding a request to pay looks at, as read inside the
// write (Draft before it).
type payRequestSnapshot struct {
	Now   time.Time
	Req   payRequest
	Draft *payDraft

	Prev     *Payment        // the payment made earlier under Req.Key, with its items; or nil
	Payer    *ledger.Account // the payer's account, or nil
	Merchant *ledger.Account // the merchant's account (a merchant's request), or nil
	Waiting  *Payment        // the number's request waiting for its code, or nil
	Stopped  bool            // the number texted STOP for the merchant
	// MerchantCount and NumberCount are the merchant's and the number's request counts
	// as stored (Subject set, zero counts when none).
	MerchantCount, NumberCount requestCount
	// Risk is what the request is graded on (risk_payreq.go), read in the write; nil:
	// not graded.
	Risk *riskFacts
}

// requestToPay decides a request to pay: the payment made earlier under its reference,
// or one refusal (an error) in the order the rules take them, or the request sent (the
// payment inserted in state requested, its code issued, its SMS queued, its counts
// counted). An overdue waiting request is expired first (overdueStep).
func (r *rules) requestToPay(s payRequestSnapshot) Decision {
	q, dr := s.Req, s.Draft
	if p := s.Prev; p != nil {
		if !sameRequest(p, q) {
			return Decision{Err: fmt.Errorf("%w: reference %q was used for another request", ErrConflict, q.Reference)}
		}
		return Decision{Outcome: Outcome{Payment: p}}
	}
	invalid := func(format string, args ...any) Decision {
		return Decision{Err: fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)}
	}
	switch a := s.Payer; {
	case a == nil || a.Type != ledger.Wallet && a.Type != ledger.Agent:
		return invalid("msisdn: %s has no wallet", Mask(q.Payer))
	case a.Status != ledger.Active:
		return invalid("msisdn: the account of %s is %s", Mask(q.Payer), a.Status)
	}
	if q.Type == MerchantPayment {
		switch m := s.Merchant; {
		case m == nil || m.Type != ledger.Merchant:
			return invalid("merchant: no merchant %q", q.Merchant)
		case m.Status != ledger.Active:
			return invalid("merchant: %s is %s", m.ID, m.Status)
		}
	} else if dr.carrier == "" {
		return invalid("msisdn: no carrier sells airtime for %s", Mask(q.Payer))
	}
	if code := dr.buy.unknown; code != "" {
		return Decision{Err: fmt.Errorf("%w: %q", ErrUnknownProduct, code)}
	}
	if len(q.Items) > 0 {
		switch total := dr.buy.total; {
		case total > r.cfg.MaxAmount:
			return invalid("items: they come to more than the largest payment, %s", r.money(r.cfg.MaxAmount))
		case total < r.cfg.MinAmount:
			return invalid("items: they come to %s, less than the smallest payment, %s", r.money(total), r.money(r.cfg.MinAmount))
		}
	}
	if dr.p == nil { // the draft found what the write did not: an account made meanwhile
		return Decision{Err: fmt.Errorf("%w: merchant %q was opened meanwhile; try again", ErrConflict, q.Merchant)}
	}
	if _, ok := r.fee(dr.p.Type, dr.p.Amount); !ok { // past the tariff's last band (fees.go)
		return invalid("amount: above the largest payment, %s", r.money(r.cfg.MaxAmount))
	}
	risk, fired := RiskNormal, []string(nil)
	if s.Risk != nil { // risk_payreq.go
		if risk, fired = grade(*s.Risk, *r.cfg.Risk); risk == RiskBlock {
			return r.requestBlocked(dr.p, fired)
		}
	}
	if s.Stopped {
		return Decision{Err: fmt.Errorf("%w: %s", ErrPayerStopped, Mask(q.Payer))}
	}
	if w := s.Waiting; w != nil {
		if s.Now.Before(w.ExpiresAt) {
			return Decision{Err: fmt.Errorf("%w: %s waits for %s", ErrPayerBusy, w.ID, Mask(q.Payer))}
		}
		return Decision{Step: overdueStep}
	}
	var counts []requestCount
	lim := r.cfg.Requests
	if q.Type == MerchantPayment && lim.PerMerchantPerMinute > 0 {
		minute := s.Now.Truncate(time.Minute).UnixMicro()
		if s.MerchantCount.in(minute) >= lim.PerMerchantPerMinute {
			return Decision{Err: fmt.Errorf("%w: at most %d requests a minute from a merchant", ErrRateLimited, lim.PerMerchantPerMinute)}
		}
		counts = append(counts, s.MerchantCount.next(minute))
	}
	if lim.PerNumberPerDay > 0 {
		day := r.startOfDay(s.Now).UnixMicro()
		if s.NumberCount.in(day) >= lim.PerNumberPerDay {
			return Decision{Err: fmt.Errorf("%w: %s has had %d requests today, the most a number gets", ErrRateLimited,
				Mask(q.Payer), lim.PerNumberPerDay)}
		}
		counts = append(counts, s.NumberCount.next(day))
	}
	p := *dr.p
	p.PayerAccount, p.CreatedAt, p.UpdatedAt, p.ExpiresAt = s.Payer.ID, s.Now, s.Now, s.Now.Add(q.TTL)
	d := Decision{Payment: &p, Insert: true, RequestKey: q.Key, Issue: &dr.code, Counts: counts,
		Auth:     []authNote{{Channel: ChannelAPI, Event: "issued", Detail: "request to pay"}},
		Messages: r.sms(p.PayerMSISDN, "request", p.ID, dr.text, true),
		Outcome:  Outcome{Payment: &p}}
	if dr.push != "" {
		d.Messages = append(d.Messages, r.pushMessage(&p, dr.push))
	}
	if q.Type == AirtimePayment {
		d.Clearing = dr.carrier
	}
	if s.Risk != nil {
		d = r.gradedRequest(d, dr, risk, fired)
	}
	return d
}

// pushMessage is the USSD push screen of request p.
func (r *rules) pushMessage(p *Payment, push string) Message {
	return Message{Kind: "sms", To: p.PayerMSISDN, From: r.cfg.Shortcode,
		Purpose: outbox.PurposeRequestPush, PaymentID: p.ID, Text: push,
		Meta: map[string]string{outbox.MetaPushPayment: p.ID}}
}

// sameRequest reports whether q asks for what p, made earlier under q's key, is: the
// same number, and the same amount or the same items in the same quantities.
func sameRequest(p *Payment, q payRequest) bool {
	if p.PayerMSISDN != q.Payer || p.Type != q.Type || len(p.Items) != len(q.Items) {
		return false
	}
	if len(q.Items) == 0 {
		return p.Amount == q.Amount
	}
	for i, it := range q.Items {
		if p.Items[i].Product != it.Product || p.Items[i].Quantity != it.Quantity {
			return false
		}
	}
	return true
}

// validity writes how long a request is valid for people: "10 min", "2 h", "1 h 30 min".
func validity(d time.Duration) string {
	mins := int((d + time.Minute - 1) / time.Minute)
	switch {
	case mins < 120:
		return strconv.Itoa(mins) + " min"
	case mins%60 == 0:
		return strconv.Itoa(mins/60) + " h"
	}
	return strconv.Itoa(mins/60) + " h " + strconv.Itoa(mins%60) + " min"
}

// requestWhat is what a request's SMS says it is for: its description, its items, or
// both ("Order 7: 2 x Sugar 1kg"); "" for neither.
func requestWhat(description string, items []Item) string {
	switch {
	case len(items) == 0:
		return description
	case description == "":
		return itemsText(items)
	}
	return description + ": " + itemsText(items)
}

// requestKey is the text of a request's SMS: for airtime, for something (a description
// or items), or plain.
func requestKey(p *Payment) string {
	switch {
	case p.Type == AirtimePayment:
		return "request_airtime"
	case p.Description != "" || len(p.Items) > 0:
		return "request_for"
	}
	return "request"
}
