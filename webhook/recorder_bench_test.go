package webhook

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/payswitch/payswitch/store"
)

// BenchmarkRecordDelivered records delivered events in batches of a few (what a 5 ms
// wait gathers at a thousand events a second) and of some tens (a 50 ms wait): the time
// per event, and on Linux the bytes the process wrote to storage per event (the
// write-ahead log and its checkpoints), which fall with the batch because each write
// copies whole pages.
func BenchmarkRecordDelivered(b *testing.B) {
	for _, batch := range []int{5, 45} {
		b.Run("batch="+strconv.Itoa(batch), func(b *testing.B) {
			db, err := store.Open(filepath.Join(b.TempDir(), "webhook.db"), store.Options{}, Schema)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			h, err := New(db, Config{SealKey: sealKey})
			if err != nil {
				b.Fatal(err)
			}
			for m := range 10 {
				if err := h.SetEndpoint(ctx, fmt.Sprintf("M%d", m), "https://shop.example/a", secretA); err != nil {
					b.Fatal(err)
				}
			}
			data := []byte(`{"id":"x",` + strings.Repeat(`"field":"a payment's view is about a kilobyte",`, 20) + `"n":1}`)
			for i := 0; i < b.N; i += 4 { // four events a write, as payments commit together
				if err := db.Write(ctx, func(tx store.Tx) error {
					for k := i; k < min(i+4, b.N); k++ {
						if err := h.Enqueue(ctx, tx, fmt.Sprintf("M%d", k%10), PaymentCompleted, fmt.Sprintf("PAY%07d", k), data,
							time.Time{}); err != nil {
							return err
						}
					}
					return nil
				}); err != nil {
					b.Fatal(err)
				}
			}
			var cs []claimed
			rows, err := db.Reader().QueryContext(ctx, `SELECT seq, id, merchant_id, type FROM webhook_events ORDER BY seq`)
			if err != nil {
				b.Fatal(err)
			}
			for rows.Next() {
				var c claimed
				if err := rows.Scan(&c.seq, &c.id, &c.merchant, &c.eventType); err != nil {
					b.Fatal(err)
				}
				cs = append(cs, c)
			}
			if err := rows.Close(); err != nil {
				b.Fatal(err)
			}
			w0 := writtenBytes()
			b.ResetTimer()
			for i := 0; i < len(cs); i += batch {
				var ds []deliveredAttempt
				for _, c := range cs[i:min(i+batch, len(cs))] {
					ds = append(ds, deliveredAttempt{c: c, a: attempt{status: 204, at: time.Now(), duration: time.Millisecond}})
				}
				if err := h.recordDelivered(ctx, ds); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if w1 := writtenBytes(); w0 >= 0 && w1 >= 0 {
				b.ReportMetric(float64(w1-w0)/float64(len(cs)), "written-B/event")
			}
		})
	}
}

// writtenBytes is what this process has written to storage so far (Linux), or -1.
func writtenBytes() int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "write_bytes: "); ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				return n
			}
		}
	}
	return -1
}
