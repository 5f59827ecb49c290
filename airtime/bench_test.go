package airtime

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
)

// BenchmarkCredit is one successful top-up over loopback HTTP: the switch's cost per
// top-up with a carrier that answers at once.
func BenchmarkCredit(b *testing.B) {
	f := newFakeCarrier(b)
	h := newHarness(b, f.url(), fast)
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if got := h.c.Credit(ctx, req(fmt.Sprintf("B%09d", i))); got.Outcome != Success {
			b.Fatal(got)
		}
	}
}

// BenchmarkCreditParallel is many resolvers crediting at once through one carrier.
func BenchmarkCreditParallel(b *testing.B) {
	f := newFakeCarrier(b)
	h := newHarness(b, f.url(), fast)
	ctx := context.Background()
	b.ReportAllocs()
	var n atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			ref := fmt.Sprintf("P%09d", n.Add(1))
			if got := h.c.Credit(ctx, req(ref)); got.Outcome != Success {
				b.Error(got)
				return
			}
		}
	})
}

// BenchmarkClassify is reading one carrier answer strictly.
func BenchmarkClassify(b *testing.B) {
	body := []byte(`{"status":"success","carrier_reference":"CR-PAY0000001"}`)
	b.ReportAllocs()
	for b.Loop() {
		if a := classify("POST", 200, body, "PAY0000001"); a.reply != replySuccess {
			b.Fatal(a)
		}
	}
}
