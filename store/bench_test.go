package store

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkGroupCommit is many callers each writing one small row at once, as the
// switch's channels do: writes/s through the group commit. FULL is the store's pipelined
// fsync; EXTRA is SQLite syncing inside every commit (what FULL was before pipelining);
// NORMAL does not sync at all, the ceiling.
func BenchmarkGroupCommit(b *testing.B) {
	for _, mode := range []string{"FULL", "EXTRA", "NORMAL"} {
		b.Run(mode, func(b *testing.B) {
			db, err := Open(filepath.Join(b.TempDir(), "b.db"), Options{Synchronous: mode}, testSchema)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for range 64 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						err := db.Write(context.Background(), func(tx Tx) error {
							_, err := tx.ExecContext(context.Background(), "INSERT INTO things (name) VALUES (?)", fmt.Sprint(i))
							return err
						})
						if err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "writes/s")
		})
	}
}
