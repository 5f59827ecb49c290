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
	"slices"
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

// liveDB is a store with replicas attached as serve attaches them: they get their last
// round in the store's Close, before the final checkpoint.
type liveDB struct {
	path string
	db   *store.DB
	rep  *Replicator
	// unwritable: some replica cannot be written, so Close reports it; that is not the
	// test's failure
	unwritable bool
}

func mustStart(t *testing.T, cfgs ...Config) *liveDB {
	t.Helper()
	return openLive(t, filepath.Join(t.TempDir(), "live.db"), tuning{}, cfgs...)
}

// openLive opens (or reopens) the database at path and starts its replicas.
func openLive(t *testing.T, path string, tun tuning, cfgs ...Config) *liveDB {
	t.Helper()
	db, err := store.Open(path, store.Options{}, testSchema)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := start(path, cfgs, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel), nil, tun)
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	l := &liveDB{path: path, db: db, rep: rep}
	db.BeforeFinalCheckpoint(func() {
		if err := rep.Close(context.Background()); err != nil && !l.unwritable {
			t.Errorf("replica close: %v", err)
		}
	})
	t.Cleanup(func() { db.Close() })
	return l
}

var rowSeq atomic.Int64

// write commits n rows, one transaction each.
func (l *liveDB) write(t *testing.T, n int) {
	t.Helper()
	for range n {
		err := l.db.Write(context.Background(), func(tx store.Tx) error {
			_, err := tx.ExecContext(context.Background(), "INSERT INTO things (name) VALUES (?)", fmt.Sprint("row ", rowSeq.Add(1)))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// waitCaughtUp polls until replica i holds everything committed before since.
func (l *liveDB) waitCaughtUp(t *testing.T, i int, since time.Time) Status {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if s := l.rep.Status()[i]; s.OK && s.CaughtUp.After(since) {
			return s
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("replica %d never caught up: %+v", i, l.rep.Status()[i])
	return Status{}
}

// waitFailing polls until replica i reports an error.
func (l *liveDB) waitFailing(t *testing.T, i int) Status {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if s := l.rep.Status()[i]; !s.OK && s.Failures > 0 && s.Error != "" {
			return s
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("replica %d is not reported failing: %+v", i, l.rep.Status()[i])
	return Status{}
}

// rows is the content of a database's table, in order.
func rows(t *testing.T, path string) []string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rs, err := db.Query("SELECT id, name FROM things ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var out []string
	for rs.Next() {
		var id int64
		var name string
		if err := rs.Scan(&id, &name); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprint(id, " ", name))
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func countRows(t *testing.T, path string) int { return len(rows(t, path)) }

// restored restores the replica into a new file and returns its path.
func restored(t *testing.T, cfg Config) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "restored.db")
	if _, err := Restore(context.Background(), cfg, out, time.Time{}); err != nil {
		t.Fatalf("restore from %s: %v", cfg.Name(), err)
	}
	return out
}

// assertEqualRestores restores every replica and compares each with the source, closed.
func assertEqualRestores(t *testing.T, source string, cfgs ...Config) {
	t.Helper()
	want := rows(t, source)
	for _, cfg := range cfgs {
		got := rows(t, restored(t, cfg))
		if !slices.Equal(got, want) {
			t.Errorf("%s restores %d rows, the source has %d (first difference at %d)", cfg.Name(), len(got), len(want),
				firstDifference(got, want))
		}
	}
}

func firstDifference(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func fileReplica(t *testing.T, name string) Config {
	return Config{URL: "file://" + filepath.Join(t.TempDir(), name), SyncInterval: 50 * time.Millisecond}
}

// Every commit made before the replicas report themselves caught up is in a restore of
// each, and what is committed after that, up to Close, is shipped by Close. The stage
// then keeps no content: every replica holds it.
func TestTwoReplicasEachRestoreTheSource(t *testing.T) {
	a, b := fileReplica(t, "a"), fileReplica(t, "b")
	l := mustStart(t, a, b)
	l.write(t, 300)
	mark := time.Now()
	for i := range 2 {
		st := l.waitCaughtUp(t, i, mark)
		if st.Lag > 5*time.Second || st.Name != []Config{a, b}[i].Name() {
			t.Errorf("status %+v", st)
		}
	}
	for _, cfg := range []Config{a, b} {
		if n := countRows(t, restored(t, cfg)); n != 300 {
			t.Errorf("%s restored %d rows while running, want 300", cfg.Name(), n)
		}
	}
	l.write(t, 200)
	if err := l.db.Close(); err != nil {
		t.Fatal(err)
	}
	assertEqualRestores(t, l.path, a, b)
	if n := len(rows(t, l.path)); n != 500 {
		t.Errorf("source has %d rows", n)
	}
	if got := l.rep.hub.stagedBytes; got != 0 {
		t.Errorf("the stage keeps %d bytes every replica holds", got)
	}
	reg := prometheus.NewRegistry()
	if err := l.rep.Register(reg); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg, "payswitch_replica_lag_seconds"); err != nil || n != 2 {
		t.Errorf("lag metric: %d series, %v", n, err)
	}
	if n, err := testutil.GatherAndCount(reg, "payswitch_replica_staged_bytes"); err != nil || n != 1 {
		t.Errorf("staged bytes metric: %d series, %v", n, err)
	}
}

func TestTheSameReplicaTwiceIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	dir := t.TempDir()
	_, err := Start(path, []Config{{URL: "file://" + dir}, {URL: "file://" + dir + "?x=1"}}, zerolog.Nop(), nil)
	if err == nil || !strings.Contains(err.Error(), "listed twice") {
		t.Fatalf("two entries for one replica: %v", err)
	}
	if _, err := Start(path, nil, zerolog.Nop(), nil); err == nil {
		t.Fatal("no replica at all: no error")
	}
}

func TestRestoreFromNothing(t *testing.T) {
	cfg := Config{URL: "file://" + t.TempDir()}
	_, err := Restore(context.Background(), cfg, filepath.Join(t.TempDir(), "x.db"), time.Time{})
	if !errors.Is(err, ErrNoBackup) {
		t.Fatalf("restore from an empty folder: %v, want ErrNoBackup", err)
	}
}

// A replica that cannot be written from the very start leaves the writes alone and
// says so, alone or beside one that can be written, which is not held back.
func TestUnwritableReplicaIsReportedNotFatal(t *testing.T) {
	blocker := filepath.Join(t.TempDir(), "not-a-folder")
	if err := os.WriteFile(blocker, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := Config{URL: "file://" + blocker + "/replica", SyncInterval: 20 * time.Millisecond}
	alone := mustStart(t, bad)
	alone.unwritable = true
	alone.write(t, 50) // every write commits
	if st := alone.waitFailing(t, 0); st.ErrorSince.IsZero() {
		t.Errorf("status %+v", st)
	}
	alone.write(t, 10)

	good := fileReplica(t, "good")
	l := mustStart(t, good, bad)
	l.unwritable = true
	l.write(t, 50)
	mark := time.Now()
	l.waitCaughtUp(t, 0, mark)
	if st := l.waitFailing(t, 1); st.ErrorSince.IsZero() || st.CaughtUp.After(mark) {
		t.Errorf("status %+v", st)
	}
	if n := countRows(t, restored(t, good)); n != 50 {
		t.Errorf("the good replica restores %d rows, want 50", n)
	}
}

// An S3-compatible replica, through Litestream's S3 client over real HTTP, with the
// credentials the config gives (the server refuses any other key), beside a folder.
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
	folder := fileReplica(t, "beside")
	l := mustStart(t, cfg, folder)
	l.write(t, 200)
	mark := time.Now()
	l.waitCaughtUp(t, 0, mark)
	l.waitCaughtUp(t, 1, mark)
	l.write(t, 100)
	if err := l.db.Close(); err != nil {
		t.Fatal(err)
	}
	if refused.Load() != 0 {
		t.Errorf("%d requests without the configured key", refused.Load())
	}
	assertEqualRestores(t, l.path, cfg, folder)
	if n := countRows(t, l.path); n != 300 {
		t.Errorf("source has %d rows, want 300", n)
	}
	wrong := cfg
	wrong.AccessKeyID = "someone-else"
	if _, err := Restore(context.Background(), wrong, filepath.Join(t.TempDir(), "x.db"), time.Time{}); err == nil {
		t.Error("restore with a refused key succeeded")
	} else if strings.Contains(err.Error(), "test-secret") {
		t.Errorf("the error shows the secret: %v", err)
	}
}
