package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/payswitch/payswitch/internal/pgtest"
)

// TestPostgresOpenAgainstNothingFailsFastNamingTheHost: a switch started against a port
// where nothing listens, or a server that accepts and never answers, is told so within a
// few seconds, by a message that names the hosts and never the password, with no
// deadline of the caller's.
func TestPostgresOpenAgainstNothingFailsFastNamingTheHost(t *testing.T) {
	closed, err := freeClosedPort()
	if err != nil {
		t.Fatal(err)
	}
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() { // accepts, reads, answers nothing
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	for _, c := range []struct {
		name  string
		hosts string
		limit time.Duration
	}{
		{"nothing listens", fmt.Sprintf("127.0.0.1:%d", closed), time.Second},
		{"nothing answers", silent.Addr().String(), pgConnectTimeout + 2*time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			_, err := OpenPostgres(context.Background(), "postgres://payswitch:s3cret-pw@"+c.hosts+"/pay", Options{}, pgSchema)
			took := time.Since(start)
			if err == nil {
				t.Fatal("opened")
			}
			if took > c.limit {
				t.Errorf("failed after %v, want within %v", took, c.limit)
			}
			msg := err.Error()
			if !strings.Contains(msg, c.hosts+"/pay") || strings.Contains(msg, "s3cret") {
				t.Errorf("message %q: want the host %s named and no password", msg, c.hosts)
			}
			if f := FaultOf(err); f != FaultUnreachable {
				t.Errorf("FaultOf = %q, want unreachable", f)
			}
		})
	}
	// A multi-host URL names every host.
	_, err = OpenPostgres(context.Background(), fmt.Sprintf("postgres://u@127.0.0.1:%d,127.0.0.2:%d/pay", closed, closed), Options{}, pgSchema)
	if want := fmt.Sprintf("127.0.0.1:%d,127.0.0.2:%d/pay", closed, closed); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("multi-host: %v, want %s named", err, want)
	}
}

// TestPostgresWriteRunsAgainWhenItsConnectionBroke: a connection that breaks before
// COMMIT leaves nothing committed, so Write runs the function again on a new connection;
// the row is there once.
func TestPostgresWriteRunsAgainWhenItsConnectionBroke(t *testing.T) {
	db := mustOpenPostgres(t, pgtest.URL(t), pgSchema)
	ctx := context.Background()
	runs := 0
	err := db.Write(ctx, func(tx Tx) error {
		runs++
		if _, err := tx.ExecContext(ctx, "INSERT INTO things (name) VALUES ('once')"); err != nil {
			return err
		}
		if runs == 1 { // the server ends this session, as a restart or a failover would
			var ok bool
			err := tx.QueryRowContext(ctx, "SELECT pg_terminate_backend(pg_backend_pid())").Scan(&ok)
			return err // whatever the function makes of it
		}
		return nil
	})
	if err != nil || runs != 2 {
		t.Fatalf("Write = %v after %d runs, want nil after 2", err, runs)
	}
	if n := count(t, db); n != 1 {
		t.Fatalf("%d rows, want 1", n)
	}
	if err := insert(db, "next"); err != nil {
		t.Fatalf("a Write after: %v", err)
	}
}

// TestPostgresLostCommitAnswerIsCommitUnknown: when the connection breaks while COMMIT
// waits (here for a synchronous standby that does not exist, then the session is
// ended), the transaction committed on the primary, yet its answer never came: Write
// says ErrCommitUnknown, FaultUnreachable, never success; a retry with the same
// idempotency key (here the unique name) finds it and books nothing twice.
func TestPostgresLostCommitAnswerIsCommitUnknown(t *testing.T) {
	ctx := context.Background()
	pair := pgtest.NewPair(t, pgtest.PairOptions{Alone: true})
	url := pair.URL("postgres")
	db := mustOpenPostgres(t, url, pgSchema)
	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	setSyncStandby(t, admin, "ghost")

	// A Write whose COMMIT waits for the ghost; the server ends its session. (Until the
	// checkpointer has read the setting, commits do not wait: then try another.)
	var done chan error
	var name string
	for attempt := 0; ; attempt++ {
		name = fmt.Sprintf("paid%d", attempt)
		done = make(chan error, 1)
		go func() { done <- insert(db, name) }()
		pid, waits := syncRepWaiter(t, admin, done)
		if waits {
			if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
				t.Fatal(err)
			}
			break
		}
		if attempt == 100 {
			t.Fatal("no Write ever waited for the standby")
		}
	}
	err = <-done
	if !errors.Is(err, ErrCommitUnknown) || FaultOf(err) != FaultUnreachable {
		t.Fatalf("Write whose COMMIT answer was lost = %v (fault %q), want ErrCommitUnknown, unreachable", err, FaultOf(err))
	}
	setSyncStandby(t, admin, "")
	// It did commit; the retry with the same key finds its row (the key's unique
	// constraint) and adds none.
	if err := insert(db, name); !IsUniqueViolation(err, "things.name") {
		t.Fatalf("retry = %v, want the first attempt's row found (a unique violation)", err)
	}
}

// setSyncStandby sets the server's synchronous_standby_names. The backends learn it
// from the checkpointer a moment after the reload.
func setSyncStandby(t *testing.T, admin *pgx.Conn, names string) {
	t.Helper()
	for _, q := range []string{"ALTER SYSTEM SET synchronous_standby_names = '" + names + "'", "SELECT pg_reload_conf()"} {
		if _, err := admin.Exec(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// syncRepWaiter waits until the store's Write waits for a synchronous standby (its pid,
// true) or the Write ends first (done then holds its result, false).
func syncRepWaiter(t *testing.T, admin *pgx.Conn, done chan error) (pid int, waits bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("a Write before the standby setting took: %v", err)
			}
			return 0, false
		default:
		}
		err := admin.QueryRow(context.Background(), `SELECT pid FROM pg_stat_activity
			WHERE wait_event = 'SyncRep' AND application_name = 'payswitch'`).Scan(&pid)
		if err == nil {
			return pid, true
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("a Write neither ended nor waited for the standby within 10s")
	return 0, false
}

// TestPostgresWritesFailWhileDownAndCarryOnAfter: the database killed under load, then
// back: meanwhile every Write fails as FaultUnreachable, afterwards Writes succeed on the
// same DB (the pools drop dead connections by themselves), every acknowledged row is
// there, and a failed Write left nothing unless its error was ErrCommitUnknown.
func TestPostgresWritesFailWhileDownAndCarryOnAfter(t *testing.T) {
	pair := pgtest.NewPair(t, pgtest.PairOptions{Alone: true})
	db := mustOpenPostgres(t, pair.URL("postgres"), pgSchema)

	const workers = 4
	var (
		phase    atomic.Int32 // 0 up, 1 down, 2 back
		acked    [3]atomic.Int32
		failures atomic.Int32
		mu       sync.Mutex
		ok       []string
		failed   = map[string]error{}
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("w%d-%d", w, i)
				ph := phase.Load()
				err := insert(db, name)
				mu.Lock()
				if err == nil {
					ok = append(ok, name)
					acked[ph].Add(1)
				} else {
					failed[name] = err
					failures.Add(1)
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(5 * time.Millisecond) // a client's pause before its next try
				}
			}
		}()
	}
	waitLong(t, "writes before the outage", func() bool { return acked[0].Load() >= 40 })
	if err := pair.KillPrimary(); err != nil {
		t.Fatal(err)
	}
	phase.Store(1)
	failed0 := failures.Load()
	waitLong(t, "writes failing while down", func() bool { return failures.Load() >= failed0+2*workers })
	if err := db.Ping(context.Background()); FaultOf(err) != FaultUnreachable {
		t.Errorf("Ping while down = %v, want unreachable", err)
	}
	if err := pair.RestartPrimary(); err != nil {
		t.Fatal(err)
	}
	phase.Store(2)
	waitLong(t, "writes after the restart", func() bool { return acked[2].Load() >= 40 })
	close(stop)
	wg.Wait()

	if acked[1].Load() > 0 {
		t.Logf("%d writes begun while down succeeded (begun before the restart, done after)", acked[1].Load())
	}
	rows := map[string]bool{}
	for _, n := range thingNames(t, db) {
		rows[n] = true
	}
	for _, name := range ok {
		if !rows[name] {
			t.Errorf("acknowledged %s lost", name)
		}
	}
	unknown := 0
	for name, err := range failed {
		if f := FaultOf(err); f != FaultUnreachable {
			t.Errorf("%s failed with %v (fault %q), want unreachable", name, err, f)
		}
		if errors.Is(err, ErrCommitUnknown) {
			unknown++
		} else if rows[name] {
			t.Errorf("%s failed with %v, not ErrCommitUnknown, yet committed", name, err)
		}
	}
	t.Logf("%d acknowledged, %d failed (%d of them ErrCommitUnknown)", len(ok), len(failed), unknown)
}

// waitLong polls cond until it holds, failing t after a limit generous enough for a
// shared machine.
func waitLong(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 60s", what)
		}
	}
}

// TestPostgresWriterHostFollowsPromotion: WriterHost names the primary; with the primary
// killed it fails as unreachable (the standby does not take writes); once the standby is
// promoted the same DB writes there, and WriterHost names it.
func TestPostgresWriterHostFollowsPromotion(t *testing.T) {
	ctx := context.Background()
	pair := pgtest.NewPair(t, pgtest.PairOptions{})
	db := mustOpenPostgres(t, pair.URL("postgres"), pgSchema)
	if h, err := db.WriterHost(ctx); err != nil || h != pair.FirstPrimary() {
		t.Fatalf("WriterHost = %q, %v; want the primary %s", h, err, pair.FirstPrimary())
	}
	if err := insert(db, "before"); err != nil {
		t.Fatal(err)
	}
	if err := pair.KillPrimary(); err != nil {
		t.Fatal(err)
	}
	if h, err := db.WriterHost(ctx); FaultOf(err) != FaultUnreachable {
		t.Fatalf("WriterHost with the primary dead = %q, %v; want unreachable (primary %s standby %s)", h, err, pair.FirstPrimary(), pair.StandbyAddr())
	}
	if err := insert(db, "during"); FaultOf(err) != FaultUnreachable {
		t.Fatalf("Write with the primary dead = %v, want unreachable", err)
	}
	if err := pair.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	if h, err := db.WriterHost(ctx); err != nil || h != pair.StandbyAddr() {
		t.Fatalf("WriterHost after promotion = %q, %v; want the standby %s", h, err, pair.StandbyAddr())
	}
	if err := insert(db, "after"); err != nil {
		t.Fatalf("Write after promotion: %v", err)
	}
	if n := count(t, db); n != 2 {
		t.Fatalf("%d rows on the promoted standby, want 2 (before, after)", n)
	}
	// The readers follow the URL's read-write host too, and still cannot write.
	if _, err := db.Reader().Exec("INSERT INTO things (name) VALUES ('by a reader')"); FaultOf(err) != FaultReadOnly {
		t.Fatalf("a write on a reader connection = %v, want refused as read-only", err)
	}
	sqlite := mustOpen(t, t.TempDir()+"/x.db", testSchema)
	if h, err := sqlite.WriterHost(ctx); h != "" || err != nil {
		t.Fatalf("WriterHost on SQLite = %q, %v; want none", h, err)
	}
}
