package store

import (
	"context"
	"database/sql"
	"net"
	"testing"

	"github.com/payswitch/payswitch/internal/pgtest"
	"golang.org/x/sys/unix"
)

// TestPostgresConnectionsNoticeADeadPeer: the writer's and the readers' connections
// carry TCP_USER_TIMEOUT and keep-alive probes, so that a server machine that vanishes
// (no RST, no FIN) fails their Writes and reads after pgDeadPeerTimeout, not after TCP's
// retransmissions give up.
func TestPostgresConnectionsNoticeADeadPeer(t *testing.T) {
	db := mustOpenPostgres(t, pgtest.URL(t), pgSchema)
	for _, c := range []struct {
		name string
		db   *sql.DB
	}{{"writer", db.pg.writer}, {"reader", db.reader}} {
		conn, err := c.db.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		err = conn.Raw(func(dc any) error {
			raw, err := dc.(*pgDriverConn).Conn.Conn().PgConn().Conn().(*net.TCPConn).SyscallConn()
			if err != nil {
				return err
			}
			return raw.Control(func(fd uintptr) {
				userTimeout, err1 := unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT)
				keepAlive, err2 := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_KEEPALIVE)
				idle, err3 := unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_KEEPIDLE)
				if err1 != nil || err2 != nil || err3 != nil {
					t.Errorf("%s: getsockopt: %v %v %v", c.name, err1, err2, err3)
				}
				if userTimeout != int(pgDeadPeerTimeout.Milliseconds()) || keepAlive != 1 ||
					idle != int((pgDeadPeerTimeout/3).Seconds()) {
					t.Errorf("%s: TCP_USER_TIMEOUT %d ms, SO_KEEPALIVE %d, TCP_KEEPIDLE %d s; want %v, on, %v",
						c.name, userTimeout, keepAlive, idle, pgDeadPeerTimeout, pgDeadPeerTimeout/3)
				}
			})
		})
		conn.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
}
