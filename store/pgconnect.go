package store

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// How long the store waits for PostgreSQL before it calls the database unreachable.
const (
	// pgConnectTimeout bounds each host's connection attempt (TCP, TLS, start-up, and the
	// read-write check of a multi-host URL), when the URL sets no connect_timeout: a
	// switch started against a database that does not answer says so, instead of waiting
	// for TCP to give up.
	pgConnectTimeout = 5 * time.Second
	// pgDeadPeerTimeout is how long a connection may have sent data that the server's
	// machine does not acknowledge, or stay idle with no answer to keep-alive probes,
	// before the kernel drops it. A killed server's kernel closes its sockets and clients
	// learn at once; a machine that is gone (power, network) tells them nothing, and
	// without this a Write waiting on it would wait for TCP's retransmissions (minutes).
	// A server that is merely slow still acknowledges at the TCP level, so a long
	// statement or a COMMIT waiting for the standby is not cut short.
	pgDeadPeerTimeout = 15 * time.Second
)

// configureConnect bounds the connection attempts of cfg and has its connections notice a
// server machine that went away (see pgDeadPeerTimeout).
func configureConnect(cfg *pgconn.Config) {
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = pgConnectTimeout
	}
	d := &net.Dialer{
		KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: pgDeadPeerTimeout / 3,
			Interval: pgDeadPeerTimeout / 9, Count: 3},
		Control: setDeadPeerTimeout,
	}
	cfg.DialFunc = d.DialContext
}

// hostsOf is every host:port of cfg (a multi-host URL has several), for messages: a
// connection string's password is never in them.
func hostsOf(cfg *pgconn.Config) string {
	hosts := []string{net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))}
	for _, f := range cfg.Fallbacks {
		h := net.JoinHostPort(f.Host, strconv.Itoa(int(f.Port)))
		if !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	return strings.Join(hosts, ",")
}

// WriterHost is the host:port of the PostgreSQL server that Writes go to now, as the
// connection sees it (the server's address, after a multi-host URL picked the host that
// takes writes), for /healthz to say which host the node writes to. It takes a
// connection of the writer pool and asks the server for an answer first, so a host that
// died is not named: the pool then connects afresh, to the promoted standby if there is
// one, or fails with an error that FaultOf calls FaultUnreachable. On SQLite it is "",
// nil: the database is the file at Path.
func (db *DB) WriterHost(ctx context.Context) (string, error) {
	if db.pg == nil {
		return "", nil
	}
	conn, err := db.pg.writer.Conn(ctx) // a connection idle for a while is checked first
	if err != nil {
		return "", fmt.Errorf("store: writer host: %w", err)
	}
	defer conn.Close()
	var host string
	err = conn.Raw(func(c any) error {
		pc := c.(*pgDriverConn).Conn.Conn().PgConn()
		if err := pc.Ping(ctx); err != nil {
			return err
		}
		host = pc.Conn().RemoteAddr().String()
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("store: writer host: %w", err)
	}
	return host, nil
}
