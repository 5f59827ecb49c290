package payswitch_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	. "github.com/payswitch/payswitch/switch"
)

// payMerchant starts a payment of KES 10 from a new wallet msisdn to the merchant with
// code, at the harness's time now, and returns it (waiting for its code).
func (h *harness) payMerchant(msisdn, code string) *Payment {
	h.t.Helper()
	h.wallet(msisdn, 100000)
	out, err := h.engine.Request(context.Background(), Request{Channel: ChannelSMS, Type: MerchantPayment,
		Payer: msisdn, Merchant: code, Amount: 1000})
	if err != nil || !out.OK() {
		h.t.Fatalf("pay %s from %s: %+v %v", code, msisdn, out, err)
	}
	return out.Payment
}

// pages reads every page of m's payments under f, limit at a time, and returns the IDs
// in the order the pages gave them.
func pages(t *testing.T, e *Engine, m string, f MerchantPaymentFilter) []string {
	t.Helper()
	var ids []string
	for range 100 {
		ps, next, err := e.MerchantPayments(context.Background(), m, f)
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) > f.Limit {
			t.Fatalf("a page of %d, limit %d", len(ps), f.Limit)
		}
		for _, p := range ps {
			if p.PayeeAccount != m {
				t.Fatalf("payment %s to %s listed for %s", p.ID, p.PayeeAccount, m)
			}
			ids = append(ids, p.ID)
		}
		if next == "" {
			return ids
		}
		f.Cursor = next
	}
	t.Fatal("the pages never end")
	return nil
}

func TestMerchantPaymentsPages(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	m1, m2 := h.merchant("55501", ""), h.merchant("55502", "")
	start := h.clock.Now()
	// Seven payments to m1 over three instants, two or three sharing each time (the
	// order must then come from the ID), one to m2, and one of m1's cancelled.
	var want []*Payment
	n := 0
	for _, batch := range []int{3, 2, 2} {
		for range batch {
			n++
			want = append(want, h.payMerchant(fmt.Sprintf("2547000001%02d", n), "55501"))
		}
		h.clock.Advance(time.Minute)
	}
	other := h.payMerchant("254700000199", "55502")
	if _, err := h.engine.Cancel(ctx, ChannelSMS, want[1].PayerMSISDN, want[1].ID); err != nil {
		t.Fatal(err)
	}
	// Newest first: the later time first, and within a time the greater ID first.
	newestFirst := func(ps []*Payment) []string {
		var ids []string
		for i := len(ps) - 1; i >= 0; i-- {
			ids = append(ids, ps[i].ID)
		}
		return ids
	}
	for _, ps := range [][]*Payment{want[0:3], want[3:5], want[5:7]} {
		if ps[0].CreatedAt != ps[len(ps)-1].CreatedAt {
			t.Fatal("the batch's payments do not share a time; the test needs them to")
		}
	}
	all := newestFirst(want)
	for limit := 1; limit <= 8; limit++ {
		got := pages(t, h.engine, m1.ID, MerchantPaymentFilter{Limit: limit})
		if strings.Join(got, " ") != strings.Join(all, " ") {
			t.Fatalf("limit %d: pages give\n%v\nwant\n%v", limit, got, all)
		}
	}
	if got := pages(t, h.engine, m2.ID, MerchantPaymentFilter{Limit: 5}); len(got) != 1 || got[0] != other.ID {
		t.Fatalf("m2's payments: %v", got)
	}

	// A payment made between two pages is not on the later pages: they go on from where
	// the first one stopped.
	first, next, err := h.engine.MerchantPayments(ctx, m1.ID, MerchantPaymentFilter{Limit: 3})
	if err != nil || len(first) != 3 || next == "" {
		t.Fatalf("first page: %d, %q, %v", len(first), next, err)
	}
	newer := h.payMerchant("254700000150", "55501")
	rest := pages(t, h.engine, m1.ID, MerchantPaymentFilter{Limit: 3, Cursor: next})
	if strings.Join(rest, " ") != strings.Join(all[3:], " ") {
		t.Fatalf("after a new payment the later pages give %v, want %v", rest, all[3:])
	}
	if got := pages(t, h.engine, m1.ID, MerchantPaymentFilter{Limit: 20}); got[0] != newer.ID {
		t.Fatalf("a new first page does not start with the newest payment: %v", got)
	}

	// Filters: a state, a time window [from, to).
	if got := pages(t, h.engine, m1.ID, MerchantPaymentFilter{Limit: 2, State: StateCancelled}); len(got) != 1 || got[0] != want[1].ID {
		t.Fatalf("cancelled: %v", got)
	}
	got := pages(t, h.engine, m1.ID, MerchantPaymentFilter{Limit: 1, From: start.Add(time.Minute), To: start.Add(2 * time.Minute)})
	if strings.Join(got, " ") != strings.Join(newestFirst(want[3:5]), " ") {
		t.Fatalf("the second minute: %v, want %v", got, newestFirst(want[3:5]))
	}
	if got := pages(t, h.engine, m1.ID, MerchantPaymentFilter{Limit: 5, State: "no_such_state"}); len(got) != 0 {
		t.Fatalf("an unknown state finds %v", got)
	}
}

func TestMerchantPaymentsRefusesBadFilters(t *testing.T) {
	h := newHarness(t)
	m := h.merchant("55501", "")
	now := h.clock.Now()
	for name, f := range map[string]MerchantPaymentFilter{
		"limit too big":       {Limit: 101},
		"negative limit":      {Limit: -1},
		"a made-up cursor":    {Cursor: "not-a-cursor"},
		"a cursor's inside":   {Cursor: "MTIzLkFBQUFBQUFBQUE"[:10]},
		"an upper-case state": {State: "Completed"},
		"to before from":      {From: now, To: now.Add(-time.Second)},
	} {
		if _, _, err := h.engine.MerchantPayments(context.Background(), m.ID, f); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if ps, next, err := h.engine.MerchantPayments(context.Background(), m.ID, MerchantPaymentFilter{}); err != nil || len(ps) != 0 || next != "" {
		t.Fatalf("no payments yet: %v %q %v", ps, next, err)
	}
}
