package pgtest

// This file does not import testing: tools (tools/crashtest) start a pair too.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// StandbyName is the standby's name in the primary's synchronous_standby_names (the
// standby's cluster_name, which its WAL receiver gives as its application_name).
const StandbyName = "standby"

// PairOptions says how StartPair sets the pair up.
type PairOptions struct {
	// Alone starts the primary without a standby, otherwise set up as a pair's primary
	// (durable): a single database to lose and get back, and the baseline that tells
	// what the synchronous standby costs.
	Alone bool
}

// Pair is a durable PostgreSQL primary with one synchronous standby, on loopback, for the
// failover drill: kill the primary, promote the standby, and see that clients with the
// multi-host URL carry on with nothing lost.
//
// Both servers sync every commit (fsync, full_page_writes), and the primary commits a
// transaction only once the standby has written its WAL to disk (synchronous_commit = on
// with the standby named in synchronous_standby_names). So every transaction whose COMMIT
// the primary acknowledged is on the standby's disk, and the standby, once promoted, has
// it. synchronous_commit = remote_apply would also wait until the standby has replayed
// the commit, so that reads on the standby see it at once; nothing reads from the
// standby here (the URL asks for the host that takes writes), so "on" is enough for
// losing nothing and spares each commit the wait for the replay.
//
// The standby has no synchronous_standby_names of its own: once promoted it commits
// alone (until an operator attaches a new standby), rather than waiting for ever for one.
type Pair struct {
	mu       sync.Mutex
	first    *Server // the primary at the start
	standby  *Server // nil when Alone
	primary  *Server // the server that takes writes now; nil once killed
	promoted bool
}

// StartPair starts a primary and, unless opts.Alone, a synchronous standby made from it
// with pg_basebackup -R, each on a free loopback port, as nobody when the process runs
// as root. It returns once the standby is streaming and the primary counts it as
// synchronous. Without PostgreSQL binaries its error satisfies NotInstalled.
func StartPair(opts PairOptions) (*Pair, error) {
	settings := append(durable("on"), "wal_level=replica", "max_wal_senders=4")
	if !opts.Alone {
		settings = append(settings, "synchronous_standby_names="+StandbyName)
	}
	first, err := newServer(settings)
	if err != nil {
		return nil, err
	}
	p := &Pair{first: first, primary: first}
	if err := first.initdb(); err != nil {
		p.Stop()
		return nil, err
	}
	if err := first.listen(); err != nil {
		p.Stop()
		return nil, err
	}
	if opts.Alone {
		return p, nil
	}
	if p.standby, err = newServer(append(durable("on"), "cluster_name="+StandbyName, "hot_standby=on")); err != nil {
		p.Stop()
		return nil, err
	}
	// -R writes primary_conninfo and standby.signal, so the copy starts as a standby of
	// first; -X stream copies the WAL written meanwhile. The copy is not synced: the
	// drill kills processes, not the machine, and the servers sync from then on.
	if err := p.standby.run("pg_basebackup", "-D", p.standby.data(), "-d", first.connString(),
		"-R", "-X", "stream", "-c", "fast", "--no-sync"); err != nil {
		p.Stop()
		return nil, err
	}
	if err := p.standby.listen(); err != nil {
		p.Stop()
		return nil, err
	}
	if err := p.waitSynchronous(30 * time.Second); err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

// NotInstalled reports whether StartPair's (or Start's) error is that no PostgreSQL 15
// or later is installed, for a caller that would skip rather than fail.
func NotInstalled(err error) bool { return errNotInstalled(err) }

// connString is a libpq connection string to the server, for its programs (pg_basebackup).
func (s *Server) connString() string {
	return fmt.Sprintf("host=127.0.0.1 port=%d user=postgres", s.port)
}

// waitSynchronous waits until the primary reports the standby as its synchronous one.
func (p *Pair) waitSynchronous(limit time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.first.URL("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	for {
		var state string
		err := conn.QueryRow(ctx, `SELECT sync_state FROM pg_stat_replication WHERE application_name = $1`,
			StandbyName).Scan(&state)
		if err == nil && state == "sync" {
			return nil
		}
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("pgtest: the standby's state: %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pgtest: the standby is not synchronous after %v (state %q)\n%s",
				limit, state, p.standby.logTail())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// URL is the multi-host URL of database name on the pair: the first primary, then the
// standby, with target_session_attrs=read-write, so that a client connects to whichever
// of them takes writes (the primary, or the standby once promoted).
func (p *Pair) URL(name string) string {
	hosts := []string{p.first.Addr()}
	if p.standby != nil {
		hosts = append(hosts, p.standby.Addr())
	}
	return fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable&target_session_attrs=read-write",
		strings.Join(hosts, ","), name)
}

// Primary is the host:port of the server that takes writes: the first primary, or the
// standby once promoted. It is "" while there is none (the primary killed, the standby
// not yet promoted).
func (p *Pair) Primary() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.primary == nil {
		return ""
	}
	return p.primary.Addr()
}

// FirstPrimary is the host:port of the primary the pair started with, whatever has
// happened to it since.
func (p *Pair) FirstPrimary() string { return p.first.Addr() }

// StandbyAddr is the standby's host:port, "" when the pair was started Alone.
func (p *Pair) StandbyAddr() string {
	if p.standby == nil {
		return ""
	}
	return p.standby.Addr()
}

// KillPrimary kills the first primary and all its processes with SIGKILL, as the loss of
// its machine would (the kernel still closes its sockets, so clients learn at once;
// a machine that vanishes from the network leaves them waiting for TCP's timeouts).
func (p *Pair) KillPrimary() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.primary != p.first {
		return errors.New("pgtest: the first primary is not the primary (killed already, or the standby promoted)")
	}
	p.primary = nil
	return p.first.kill()
}

// RestartPrimary starts the killed first primary again on its port: it recovers from its
// WAL and takes writes again (as a database that comes back after an outage). It refuses
// once the standby was promoted: two primaries would each take writes the other lacks.
func (p *Pair) RestartPrimary() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.promoted {
		return errors.New("pgtest: the standby was promoted; the old primary must not take writes again")
	}
	if p.first.cmd != nil {
		return errors.New("pgtest: the primary is running")
	}
	if err := p.first.launch(); err != nil {
		return err
	}
	p.primary = p.first
	return nil
}

// Promote makes the standby the primary (pg_promote) and returns once it takes writes.
func (p *Pair) Promote(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.standby == nil || p.promoted {
		return errors.New("pgtest: no standby to promote")
	}
	conn, err := pgx.Connect(ctx, p.standby.URL("postgres"))
	if err != nil {
		return fmt.Errorf("pgtest: promote: %w", err)
	}
	defer conn.Close(context.Background())
	var done bool
	if err := conn.QueryRow(ctx, `SELECT pg_promote(true, 60)`).Scan(&done); err != nil || !done {
		return fmt.Errorf("pgtest: promote: %v (done %v)\n%s", err, done, p.standby.logTail())
	}
	p.promoted = true
	p.primary = p.standby
	return nil
}

// Stop stops both servers and removes their folders.
func (p *Pair) Stop() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for _, s := range []*Server{p.first, p.standby} {
		if s != nil {
			errs = append(errs, s.Stop())
		}
	}
	p.primary = nil
	return errors.Join(errs...)
}

// Logs is the end of each server's log, for a failing test's message.
func (p *Pair) Logs() string {
	out := "primary:\n" + p.first.logTail()
	if p.standby != nil {
		out += "\nstandby:\n" + p.standby.logTail()
	}
	return out
}

// CreateDatabase makes the empty database name on the primary (the standby receives it)
// and returns its multi-host URL (URL).
func (p *Pair) CreateDatabase(ctx context.Context, name string) (string, error) {
	primary := p.Primary()
	if primary == "" {
		return "", errors.New("pgtest: no primary takes writes")
	}
	if err := createDatabase(ctx, fmt.Sprintf("postgres://postgres@%s/postgres?sslmode=disable", primary), name); err != nil {
		return "", err
	}
	return p.URL(name), nil
}
