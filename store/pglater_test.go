package store

import (
	"context"
	"errors"
	"testing"

	"github.com/payswitch/payswitch/internal/pgtest"
)

// Statements held back by Later run before the next one, in order, so that it sees
// them; one held back at the end of a Write is committed with it.
func TestLaterRunsBeforeTheNextStatementAndCommits(t *testing.T) {
	eachDriver(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		var seen, affected int64
		err := db.Write(ctx, func(tx Tx) error {
			for _, name := range []string{"a", "b"} {
				if err := Later(ctx, tx, "INSERT INTO things (name) VALUES (?)", name); err != nil {
					return err
				}
			}
			if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM things").Scan(&seen); err != nil {
				return err
			}
			if err := Later(ctx, tx, "INSERT INTO things (name) VALUES (?)", "c"); err != nil {
				return err
			}
			res, err := tx.ExecContext(ctx, "UPDATE things SET name = name || '!' WHERE name <> ?", "a")
			if err != nil {
				return err
			}
			affected, err = res.RowsAffected()
			if err != nil {
				return err
			}
			return Later(ctx, tx, "INSERT INTO things (name) VALUES (?)", "d") // nothing after it
		})
		if err != nil {
			t.Fatal(err)
		}
		if seen != 2 || affected != 2 {
			t.Errorf("the read saw %d rows and the update changed %d, want 2 and 2", seen, affected)
		}
		if n := count(t, db); n != 4 {
			t.Errorf("%d rows committed, want 4", n)
		}
	})
}

// A statement held back that fails fails its Write, whether a statement came after it
// or not, and nothing of the Write is committed.
func TestLaterFailureFailsTheWrite(t *testing.T) {
	eachDriver(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		if err := insert(db, "taken"); err != nil {
			t.Fatal(err)
		}
		for _, then := range []string{"a read after it", "nothing after it"} {
			err := db.Write(ctx, func(tx Tx) error {
				if _, err := tx.ExecContext(ctx, "INSERT INTO things (name) VALUES (?)", "new"); err != nil {
					return err
				}
				if err := Later(ctx, tx, "INSERT INTO things (name) VALUES (?)", "taken"); err != nil {
					return err
				}
				if then == "nothing after it" {
					return nil
				}
				var n int
				return tx.QueryRowContext(ctx, "SELECT count(*) FROM things").Scan(&n)
			})
			if !IsUniqueViolation(err, "things.name") {
				t.Errorf("%s: Write's error %v, want the unique violation", then, err)
			}
			if n := count(t, db); n != 1 {
				t.Errorf("%s: %d rows, want the 1 from before", then, n)
			}
		}
	})
}

// A pipelined query's columns reach database/sql as the types it scans.
func TestPostgresPipelinedQueryReadsEachType(t *testing.T) {
	db := mustOpenPostgres(t, pgtest.URL(t), pgSchema)
	ctx := context.Background()
	var (
		i32, i64 int64
		s        string
		b        []byte
		ok       bool
		null     *string
		sum      int64
	)
	err := db.Write(ctx, func(tx Tx) error {
		for i, name := range []string{"x", "y"} {
			if err := Later(ctx, tx, "INSERT INTO things (id, name) VALUES (?, ?)", int64(40+2*i), name); err != nil {
				return err
			}
		}
		return tx.QueryRowContext(ctx, `SELECT 7::integer, 8::bigint, 'text'::text COLLATE "C", '\x01ff'::bytea, true,
			NULL::text, (SELECT sum(id) FROM things)`).Scan(&i32, &i64, &s, &b, &ok, &null, &sum)
	})
	if err != nil {
		t.Fatal(err)
	}
	if i32 != 7 || i64 != 8 || s != "text" || string(b) != "\x01\xff" || !ok || null != nil || sum != 82 {
		t.Errorf("read %d %d %q %q %v %v %d", i32, i64, s, b, ok, null, sum)
	}
}

// A deadlock or serialization failure met by a statement held back makes the Write run
// again, as when the statement itself met it.
func TestPostgresLaterRetryableFailureRunsAgain(t *testing.T) {
	db := mustOpenPostgres(t, pgtest.URL(t), pgSchema)
	ctx := context.Background()
	if err := db.Write(ctx, func(tx Tx) error {
		_, err := tx.ExecContext(ctx, `CREATE FUNCTION fail_serialization(fail boolean) RETURNS int LANGUAGE plpgsql AS $$
			BEGIN
				IF fail THEN RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END IF;
				RETURN 0;
			END $$`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	runs := 0
	err := db.Write(ctx, func(tx Tx) error {
		runs++
		if err := Later(ctx, tx, "SELECT fail_serialization(?)", runs == 1); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO things (name) VALUES (?)", "after")
		if runs == 1 && err == nil {
			return errors.New("the held-back statement's failure was not the next statement's")
		}
		return err
	})
	if err != nil || runs != 2 {
		t.Errorf("Write: %v after %d runs, want success on the second", err, runs)
	}
	if n := count(t, db); n != 1 {
		t.Errorf("%d rows, want 1", n)
	}
}
