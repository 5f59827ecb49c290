package store

import (
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// pgFault classifies an error from PostgreSQL by its SQLSTATE, or as FaultUnreachable
// when the server could not be reached or the connection broke; ok is false for an
// error that did not come from PostgreSQL or its connection.
func pgFault(err error) (f Fault, ok bool) {
	if errors.Is(err, ErrCommitUnknown) || errors.Is(err, errConnLost) {
		return FaultUnreachable, true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "53100": // disk_full
			return FaultFull, true
		case pe.Code == "25006": // read_only_sql_transaction: a standby, or a primary demoted
			return FaultReadOnly, true
		case pe.Code == "55P03" || pe.Code == "40001" || pe.Code == "40P01":
			// lock_not_available (lock_timeout), and the serialization failures and
			// deadlocks that Write ran again until it gave up.
			return FaultBusy, true
		case pe.Code == "58030": // io_error
			return FaultIO, true
		case pe.Code == "XX001" || pe.Code == "XX002": // data_corrupted, index_corrupted
			return FaultCorrupt, true
		case strings.HasPrefix(pe.Code, "08"), pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03":
			// connection_exception; admin_shutdown, crash_shutdown, cannot_connect_now
			return FaultUnreachable, true
		}
		return "", true
	}
	// (Not net.Error: syscall.Errno satisfies it, and an errno is the files' fault.)
	var ce *pgconn.ConnectError
	var oe *net.OpError
	if errors.As(err, &ce) || errors.As(err, &oe) || errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, io.ErrUnexpectedEOF) {
		return FaultUnreachable, true
	}
	return "", false
}
