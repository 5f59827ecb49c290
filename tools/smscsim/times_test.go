package smscsim

import (
	"testing"
	"time"

	"github.com/fiorix/go-smpp/smpp/pdu"
)

func TestLatencyQuantiles(t *testing.T) {
	var l Latency
	if l.Quantile(0.5) != 0 {
		t.Fatal("an empty histogram has a median")
	}
	for range 90 {
		l.Add(time.Millisecond)
	}
	before := l
	for range 9 {
		l.Add(150 * time.Millisecond)
	}
	l.Add(5 * time.Second)
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{
		{0.5, 1100 * time.Microsecond}, // the top of the 0.1 ms bucket that holds 1 ms
		{0.9, 1100 * time.Microsecond},
		{0.95, 151 * time.Millisecond}, // 1 ms buckets past 100 ms
		{0.99, 151 * time.Millisecond},
		{1, 2 * time.Second}, // everything past 2 s shares the last bucket
	} {
		if got := l.Quantile(c.q); got != c.want {
			t.Errorf("quantile %v = %v, want %v", c.q, got, c.want)
		}
	}
	later := l.Since(before)
	if later.Count() != 10 || later.Quantile(0.5) != 151*time.Millisecond {
		t.Fatalf("since: %d durations, median %v", later.Count(), later.Quantile(0.5))
	}
	if l.Count() != 100 {
		t.Fatal("Since changed its receiver")
	}
}

// Every part of an MO acknowledged is timed, and the MO's wait once.
func TestDeliveryTimes(t *testing.T) {
	s := mustStart(t, Config{})
	e := mustBindESME(t, s)
	if err := s.SendMO(ctxT(t), phone, shortcode, longGSM); err != nil {
		t.Fatal(err)
	}
	if _, _, _, parts := readMO(t, func() pdu.Body { return e.next(t) }); parts != 3 {
		t.Fatalf("%d parts", parts)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mo := s.DeliveryTimes()["MO"]
		if mo.Ack.Count() == 3 && mo.Wait.Count() == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("MO times: %d acknowledged, %d waits", mo.Ack.Count(), mo.Wait.Count())
		}
		time.Sleep(time.Millisecond) // the last part's answer is recorded after the ESME read it
	}
	if _, ok := s.DeliveryTimes()["receipt"]; ok {
		t.Fatal("receipts timed without any")
	}
}
