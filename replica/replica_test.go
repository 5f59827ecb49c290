package replica

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/store"
	_ "modernc.org/sqlite"
)

var testSchema = store.Schema{Component: "test", Migrations: []string{
	`CREATE TABLE things (id INTEGER PRIMARY KEY, name TEXT NOT NULL) STRICT`,
}}

// liveDB is a store with a replica attached as serve attaches it: the replica ships
// its last frames in the store's Close, before the final checkpoint.
type liveDB struct {
	db  *store.DB
	rep *Replicator
	// unwritable: the replica cannot be written, so its last sync at Close fails too
	unwritable bool
}

func mustStart(t *testing.T, cfg Config) *liveDB {
	t.Helper()
	path := filepath.Join(t.TempDir(), "live.db")
	db, err := store.Open(path, store.Options{}, testSchema)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Start(path, cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel), nil)
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	l := &liveDB{db: db, rep: rep}
	db.BeforeFinalCheckpoint(func() {
		if err := rep.Close(context.Background()); err != nil && !l.unwritable {
			t.Errorf("replica close: %v", err)
		}
	})
	t.Cleanup(func() { db.Close() })
	return l
}

func (l *liveDB) write(t *testing.T, n int) {
	t.Helper()
	for i := range n {
		err := l.db.Write(context.Background(), func(tx store.Tx) error {
			_, err := tx.ExecContext(context.Background(), "INSERT INTO things (name) VALUES (?)", fmt.Sprint("row ", i))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// waitCaughtUp polls until a round that began after since has shipped everything.
func (l *liveDB) waitCaughtUp(t *testing.T, since time.Time) Status {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if s := l.rep.Status(); s.OK && s.CaughtUp.After(since) {
			return s
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("replica never caught up: %+v", l.rep.Status())
	return Status{}
}

func countRows(t *testing.T, path string) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM things").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Every commit made before the replica reports itself caught up is in a restore of it,
// and what is committed after that, up to Close, is shipped by Close.
func TestFileReplicaRestores(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "replica")
	cfg := Config{URL: "file://" + dir, SyncInterval: 50 * time.Millisecond}
	l := mustStart(t, cfg)
	l.write(t, 300)
	mark := time.Now()
	st := l.waitCaughtUp(t, mark)
	if st.Lag > 5*time.Second || st.Name != "file://"+dir {
		t.Errorf("status %+v", st)
	}
	mid := filepath.Join(t.TempDir(), "mid.db")
	if _, err := Restore(context.Background(), cfg, mid, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, mid); n != 300 {
		t.Errorf("restored %d rows while running, want 300", n)
	}
	l.write(t, 200)
	if err := l.db.Close(); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "restored.db")
	got, err := Restore(context.Background(), cfg, out, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, out); n != 500 {
		t.Errorf("restored %d rows after close, want 500", n)
	}
	if got.UpdatedAt.IsZero() {
		t.Error("restore says nothing of when")
	}
	reg := prometheus.NewRegistry()
	if err := l.rep.Register(reg); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg, "payswitch_replica_lag_seconds"); err != nil || n != 1 {
		t.Errorf("lag metric: %d series, %v", n, err)
	}
}

func TestRestoreFromNothing(t *testing.T) {
	cfg := Config{URL: "file://" + t.TempDir()}
	_, err := Restore(context.Background(), cfg, filepath.Join(t.TempDir(), "x.db"), time.Time{})
	if !errors.Is(err, ErrNoBackup) {
		t.Fatalf("restore from an empty folder: %v, want ErrNoBackup", err)
	}
}

// A replica that cannot be written leaves the writes alone and says so.
func TestUnwritableReplicaIsReportedNotFatal(t *testing.T) {
	blocker := filepath.Join(t.TempDir(), "not-a-folder")
	if err := os.WriteFile(blocker, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	l := mustStart(t, Config{URL: "file://" + blocker + "/replica", SyncInterval: 20 * time.Millisecond})
	l.unwritable = true
	l.write(t, 50) // every write commits
	deadline := time.Now().Add(10 * time.Second)
	for l.rep.Status().OK || l.rep.Status().Failures == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("a replica in a file is not reported: %+v", l.rep.Status())
		}
		time.Sleep(10 * time.Millisecond)
	}
	st := l.rep.Status()
	if st.Error == "" || st.ErrorSince.IsZero() {
		t.Errorf("status %+v", st)
	}
	l.write(t, 10)
}

// An S3-compatible replica, through Litestream's S3 client over real HTTP, with the
// credentials the config gives (the server refuses any other key).
func TestS3Replica(t *testing.T) {
	// The AWS SDK refuses a CA bundle from the environment together with the HTTP
	// client Litestream gives it; this machine sets one.
	t.Setenv("AWS_CA_BUNDLE", "")
	backend := s3mem.New()
	if err := backend.CreateBucket("books"); err != nil {
		t.Fatal(err)
	}
	faker := gofakes3.New(backend, gofakes3.WithLogger(gofakes3.DiscardLog()))
	var refused atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// gofakes3 does not check signatures; the key ID in each request's signature
		// shows which credentials the client used.
		if !strings.Contains(r.Header.Get("Authorization"), "Credential=test-key-id/") {
			refused.Add(1)
			http.Error(w, "<Error><Code>InvalidAccessKeyId</Code></Error>", http.StatusForbidden)
			return
		}
		faker.Server().ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	cfg := Config{URL: "s3://books/payswitch?endpoint=" + srv.URL + "&region=us-east-1&forcePathStyle=true",
		AccessKeyID: "test-key-id", SecretAccessKey: "test-secret", SyncInterval: 50 * time.Millisecond}
	if name := cfg.Name(); name != "s3://books/payswitch" {
		t.Errorf("name %q shows the query", name)
	}
	l := mustStart(t, cfg)
	l.write(t, 200)
	l.waitCaughtUp(t, time.Now())
	l.write(t, 100)
	if err := l.db.Close(); err != nil {
		t.Fatal(err)
	}
	if refused.Load() != 0 {
		t.Errorf("%d requests without the configured key", refused.Load())
	}
	out := filepath.Join(t.TempDir(), "restored.db")
	if _, err := Restore(context.Background(), cfg, out, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, out); n != 300 {
		t.Errorf("restored %d rows, want 300", n)
	}
	wrong := cfg
	wrong.AccessKeyID = "someone-else"
	if _, err := Restore(context.Background(), wrong, filepath.Join(t.TempDir(), "x.db"), time.Time{}); err == nil {
		t.Error("restore with a refused key succeeded")
	} else if strings.Contains(err.Error(), "test-secret") {
		t.Errorf("the error shows the secret: %v", err)
	}
}
