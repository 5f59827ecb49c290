package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/payswitch/payswitch/config"
	"github.com/payswitch/payswitch/store"
)

// The commands that work on serve's database (export, settle, backup, restore) on
// PostgreSQL (database.url). They read or write the database serve runs on, and must
// never be what creates or upgrades it: serve migrates at start, under its advisory
// lock, and a command that migrated a database under a running older serve would stop
// that serve's statements.

// openExisting opens the PostgreSQL database of d for command cmd, provided serve of
// this release has set it up: every schema at exactly the version this binary knows.
// A database without them is refused (it is not serve's, or serve never ran on it), as
// is one at another version (older: start serve of this release first, which upgrades
// it; newer: use the newer binary), instead of being created or migrated here.
func openExisting(ctx context.Context, cmd string, d config.Database, opts store.Options, schemas ...store.Schema) (*store.DB, error) {
	conn, err := pgx.Connect(ctx, d.URL)
	if err != nil {
		return nil, fmt.Errorf("%s: database %s: %w", cmd, d.Where(), err)
	}
	have := map[string]int{}
	var present bool
	err = conn.QueryRow(ctx, `SELECT to_regclass('schema_versions') IS NOT NULL`).Scan(&present)
	if err == nil && present {
		var rows pgx.Rows
		if rows, err = conn.Query(ctx, `SELECT component, version FROM schema_versions`); err == nil {
			var c string
			var v int
			_, err = pgx.ForEachRow(rows, []any{&c, &v}, func() error { have[c] = v; return nil })
		}
	}
	conn.Close(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: database %s: read schema versions: %w", cmd, d.Where(), err)
	}
	for _, s := range schemas {
		v, ok := have[s.Component]
		switch {
		case !ok:
			return nil, fmt.Errorf("%s: database %s holds no %s tables: is database.url serve's database, and has serve run on it?", cmd, d.Where(), s.Component)
		case v > len(s.Postgres):
			return nil, fmt.Errorf("%s: %w: %s is at version %d, this binary knows %d: run the newer payswitch", cmd, store.ErrNewerSchema, s.Component, v, len(s.Postgres))
		case v < len(s.Postgres):
			return nil, fmt.Errorf("%s: database %s: %s is at version %d, this binary's is %d: start serve of this release first (it upgrades the database; %s does not)", cmd, d.Where(), s.Component, v, len(s.Postgres), cmd)
		}
	}
	db, err := store.OpenPostgres(ctx, d.URL, opts, schemas...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cmd, err)
	}
	return db, nil
}

// hasTable reports whether the database db reads has a table named name, asking its own
// catalogue (a failed probe would abort a PostgreSQL transaction).
func hasTable(ctx context.Context, db *store.DB, name string) (bool, error) {
	look := `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`
	if db.Dialect() == store.Postgres {
		look = `SELECT count(*) FROM pg_class WHERE oid = to_regclass(?)`
	}
	var n int
	if err := db.Reader().QueryRowContext(ctx, look, name).Scan(&n); err != nil {
		return false, err
	}
	return n > 0, nil
}

// postgresBinDirs are where PostgreSQL's own tools are looked for after PATH: the
// folders of the server's binaries as Debian and Ubuntu install them, newest first (a
// pg_dump must be at least as new as the server it dumps).
var postgresBinDirs = func() []string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	return dirs
}

// postgresTool finds PostgreSQL's program name (pg_dump, pg_restore): beside the
// server's binaries, else on PATH.
func postgresTool(name string) (string, error) {
	for _, dir := range postgresBinDirs() {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s not found in /usr/lib/postgresql/*/bin or on PATH: install PostgreSQL's client tools (Debian: apt-get install postgresql-client), of the server's version or newer", name)
}

// postgresToolCommand runs PostgreSQL's program tool on the database at dbURL. The
// password never goes on the command line, where every user of the machine can read it
// (ps): it is taken out of the URL and given in the environment (PGPASSWORD), which
// only the process's owner can read.
func postgresToolCommand(ctx context.Context, tool, dbURL string, args ...string) (*exec.Cmd, error) {
	conn, password, err := withoutPassword(dbURL)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, tool, append(args, "--no-password", "--dbname="+conn)...)
	cmd.Env = os.Environ()
	if password != "" {
		cmd.Env = append(cmd.Env, "PGPASSWORD="+password)
	}
	return cmd, nil
}

// withoutPassword splits a postgres:// URL into the URL without its password and the
// password ("" for none). A password given as a query parameter is moved too.
func withoutPassword(dbURL string) (string, string, error) {
	u, err := url.Parse(dbURL)
	if err != nil {
		return "", "", errors.New("database.url is not a URL")
	}
	var password string
	if u.User != nil {
		password, _ = u.User.Password()
		u.User = url.User(u.User.Username())
	}
	q := u.Query()
	if p := q.Get("password"); p != "" {
		password = p
		q.Del("password")
		u.RawQuery = q.Encode()
	}
	return u.String(), password, nil
}

// toolError is err of PostgreSQL's program tool, with what it wrote to stderr.
func toolError(tool string, err error, stderr string) error {
	stderr = strings.TrimSpace(stderr)
	if stderr == "" {
		return fmt.Errorf("%s: %w", filepath.Base(tool), err)
	}
	return fmt.Errorf("%s: %w: %s", filepath.Base(tool), err, stderr)
}
