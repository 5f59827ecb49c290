package main

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestHangingWebhookHoldsUpNoOne runs two merchants through a running switch, one of
// whose systems never answers: its events are retried, while the other merchant's
// arrive at once and SMS payments to both go on as before.
func TestHangingWebhookHoldsUpNoOne(t *testing.T) {
	// webhooks.workers, and how many deliveries one merchant may have in flight then.
	for _, tc := range []struct{ workers, perMerchant int }{{8, 2}, {2, 1}} {
		t.Run(fmt.Sprintf("%d workers", tc.workers), func(t *testing.T) { hangingWebhook(t, tc.workers, tc.perMerchant) })
	}
}

func hangingWebhook(t *testing.T, workers, perMerchant int) {
	// A delivery unanswered for webhooks.timeout has failed.
	s := startSwitchWith(t, "5m", fmt.Sprintf("webhooks:\n  timeout: 3s\n  workers: %d\n", workers))
	hangs, answers := startReceiver(t, s, hookSecret), startReceiver(t, s, "duka-webhook-secret-0123456789")
	hangs.set(0, true)
	w := s.open(map[string]string{"type": "wallet", "msisdn": alice, "name": "Alice"})
	wb := s.open(map[string]string{"type": "wallet", "msisdn": bob, "name": "Bob"})
	a, b := s.phone(alice), s.phone(bob)
	s.deposit(w.ID, 100000, "CASHIN-A")
	a.expect("deposited")
	s.deposit(wb.ID, 100000, "CASHIN-B")
	b.expect("deposited")
	ma, mb := s.openShop("55501", "Mama Mboga", ""), s.openShop("55502", "Duka", "")
	ma.setWebhook(hangs)
	mb.setWebhook(answers)

	// payMama pays Mama Mboga by SMS and checks that it went through while her system
	// kept deliveries waiting and none of them ended: the payment waited for none.
	payMama := func(amount string) string {
		t.Helper()
		hanging, ended := hangs.hangs()
		a.send("PAY 55501 " + amount)
		a.send(codeIn(t, a.expect("KES "+amount+".00")))
		id := paymentID(a.expect("confirmed"))
		if now, after := hangs.hangs(); hanging > 0 && (now == 0 || after != ended) {
			t.Fatalf("the payment waited for Mama Mboga's system: %d deliveries waiting, %d ended meanwhile", now, after-ended)
		}
		return id
	}
	// payDuka pays Duka by SMS and checks that Duka's system heard of it while every
	// delivery to Mama Mboga's system that waited still waits: it was not held up.
	payDuka := func() {
		t.Helper()
		b.send("PAY 55502 10")
		code := codeIn(t, b.expect("KES 10.00"))
		hanging, ended := hangs.hangs()
		b.send(code)
		answers.expect("payment.completed", paymentID(b.expect("confirmed")))
		if now, after := hangs.hangs(); now < hanging || after != ended {
			t.Fatalf("Duka's event waited for Mama Mboga's deliveries: %d waiting, %d ended meanwhile", now, after-ended)
		}
	}

	first := payMama("100")
	hangs.waitHanging(1)
	second := payMama("200")
	hangs.waitHanging(perMerchant)
	payDuka()

	// Mama Mboga's deliveries end unanswered, one after the other when she may have one
	// in flight, and wait for their retry.
	var attempts []hookEvent
	eventually(t, "an attempt at each of Mama Mboga's events", func() bool {
		attempts, _, _ = hangs.state()
		return len(attempts) == 2
	})
	if attempts[0].Data.ID != first || attempts[1].Data.ID != second {
		t.Fatalf("attempts %+v, want one for %s and one for %s", attempts, first, second)
	}
	for _, ev := range attempts {
		failed := ma.waitDelivery(ev.ID, func(d delivery) bool { return d.Attempt == 1 && d.Error != "" })
		if !strings.Contains(failed.Error, "no answer within 3s") || failed.State != "pending" || failed.NextAt == "" {
			t.Fatalf("the failed attempt %+v", failed)
		}
	}
	s.advance(time.Minute) // the backoff passes on the switch's clock
	s.kickHooks()
	hangs.waitHanging(perMerchant)
	if n := tries(hangs, attempts[0].ID); n != 2 {
		t.Fatalf("%s was tried %d times, want 2", attempts[0].ID, n)
	}
	payDuka() // while the retries wait unanswered
	payMama("300")

	if b := s.account(ma.id).Balance; b.Posted != 60000 {
		t.Fatalf("Mama Mboga's balance: %+v", b)
	}
	if _, _, forged := hangs.state(); forged != 0 {
		t.Fatalf("%d deliveries failed their signature check", forged)
	}
}

// tries is how many times r was sent event.
func tries(r *receiver, event string) int {
	attempts, _, _ := r.state()
	n := 0
	for _, ev := range attempts {
		if ev.ID == event {
			n++
		}
	}
	return n
}

// TestWebhookOutlivesARestart stops the switch while its delivery of an event waits
// unanswered: after the restart the event goes out again, with the same ID, and the
// attempt the stop cut short does not count.
func TestWebhookOutlivesARestart(t *testing.T) {
	s := startSwitch(t, "5m")
	rcv := startReceiver(t, s, hookSecret)
	rcv.set(0, true)
	w := s.open(map[string]string{"type": "wallet", "msisdn": alice, "name": "Alice"})
	a := s.phone(alice)
	s.deposit(w.ID, 100000, "CASHIN-1")
	a.expect("deposited")
	m := s.openShop("55501", "Mama Mboga", "")
	m.setWebhook(rcv)
	a.send("PAY 55501 150")
	a.send(codeIn(t, a.expect("KES 150.00")))
	id := paymentID(a.expect("confirmed"))
	rcv.waitHanging(1)
	attempts, _, _ := rcv.state()

	s.stop()
	rcv.set(0, false)
	s.start()
	ev := rcv.expect("payment.completed", id)
	if ev.ID != attempts[0].ID || ev.Data.State != "completed" {
		t.Fatalf("after the restart %+v, want %s", ev, attempts[0].ID)
	}
	m.waitDelivery(ev.ID, func(d delivery) bool { return d.State == "delivered" && d.Attempt == 1 })
}
