package ivr

import (
	"context"
	"encoding/xml"
	"strings"
	"testing"

	payswitch "github.com/payswitch/payswitch/switch"
)

// FuzzIVRDigits keys anything at every prompt of the scripts. Whatever is keyed, the
// answer is a valid Response that either prompts again or ends the call, a keyed code is
// never spoken back, and no money is posted: the only payment that could complete needs
// a code that the fuzzer would have to guess.
func FuzzIVRDigits(f *testing.F) {
	h := newHarness(f, options{})
	a := h.Wallet(alice, 1000000)
	b := h.Wallet(bob, 0)
	m := h.Merchant(till, "Mama Mboga", mama)
	ctx := context.Background()
	if err := h.Engine.HandleSMS(ctx, alice, "PAY 55501 150"); err != nil {
		f.Fatal(err)
	}
	pending := h.lastPayment(alice).ID
	for _, seed := range []string{"", "1", "2", "3", "9", "#", "1#", "55501#", "150", "150#", "0700000002",
		"000000", "123456#", "12345", "1234567", "*", "**#", "1*2", " 1 ", "١", "\x00", "%31", "-150", "1.5",
		"99999999999999999999", strings.Repeat("9", 40), "\ufffd", "1\n2"} {
		for node := range uint8(8) {
			f.Add(node, seed)
		}
	}
	nodes := []*session{
		{node: nodeMenu, ask: "menu", digits: 1},
		{node: nodeMerchant, ask: "merchant", typ: payswitch.MerchantPayment},
		{node: nodeNumber, ask: "number", typ: payswitch.TransferPayment},
		{node: nodeAmount, ask: "amount", typ: payswitch.MerchantPayment, field: till},
		{node: nodeAmount, ask: "amount", typ: payswitch.TransferPayment, field: "0700000002"},
		{node: nodeCode, ask: "code", digits: 6, payment: pending},
		{node: nodeNotice, ask: "notice", digits: 1, payment: pending, notice: "notice"},
		{node: nodeDone, last: final("done")},
	}
	seq := 0
	f.Fuzz(func(t *testing.T, n uint8, raw string) {
		seq++
		id := "fuzz-" + strings.Repeat("x", seq%3) + string(rune('a'+seq%26)) + h.Clock.Now().Format("150405.000000")
		tmpl := nodes[int(n)%len(nodes)]
		sess := &session{node: tmpl.node, ask: tmpl.ask, digits: tmpl.digits, typ: tmpl.typ, field: tmpl.field,
			payment: tmpl.payment, notice: tmpl.notice, last: tmpl.last, phone: alice, seen: h.Clock.Now()}
		h.svc.store(id, sess)
		defer h.svc.end(id)

		r := h.svc.handle(ctx, callback{sessionID: id, active: true, direction: "inbound", caller: alice, digits: raw})

		body, err := xml.Marshal(r)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		var back Response
		if err := xml.Unmarshal(body, &back); err != nil {
			t.Fatalf("answer is not XML: %v\n%s", err, body)
		}
		switch {
		case back.Reject != nil:
			t.Fatalf("a call in progress was rejected: %s", body)
		case back.GetDigits != nil:
			if back.GetDigits.Say == nil || back.GetDigits.Say.Text == "" || back.Say != nil {
				t.Fatalf("prompt without words: %s", body)
			}
			if d := back.GetDigits.NumDigits; d != 0 && d != 1 && d != 6 {
				t.Fatalf("numDigits %d", d)
			}
		case back.Say == nil || back.Say.Text == "":
			t.Fatalf("an answer that neither prompts nor says anything: %s", body)
		}

		digits, missing, ok := keys(raw)
		if ok {
			if digits == "" || len(digits) > 32 || strings.Trim(digits, "0123456789") != "" {
				t.Fatalf("keys(%q) accepted %q", raw, digits)
			}
		}
		if missing && strings.Trim(raw, " \t\r\n\v\f#") != "" {
			t.Fatalf("keys(%q) saw nothing keyed", raw)
		}
		if tmpl.node == nodeCode && ok && len(digits) == 6 && strings.Contains(r.text(), Spell(digits)) {
			t.Fatalf("the keyed code was spoken back: %q", r.text())
		}
		posted := func(id string) int64 {
			acct, err := h.Ledger.Account(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			return acct.Balance.Posted
		}
		if got := posted(a.ID); got != 1000000 {
			t.Fatalf("alice's posted balance moved to %d", got)
		}
		if posted(b.ID) != 0 || posted(m.ID) != 0 {
			t.Fatalf("money reached a payee")
		}
	})
}
