package main

// The commands on PostgreSQL (database.url): an export is the same files as from SQLite
// and passes verify; backup and restore go through pg_dump and pg_restore; every command
// refuses a database serve never set up, and what it cannot do, clearly and non-zero.

import (
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/payswitch/payswitch/audit"
	"github.com/payswitch/payswitch/config"
	"github.com/payswitch/payswitch/internal/pgtest"
	"github.com/payswitch/payswitch/ledger"
	"github.com/payswitch/payswitch/otp"
	"github.com/payswitch/payswitch/store"
)

// onPostgres runs test as a subtest named "postgres", where newBooksFixture opens a
// PostgreSQL database.
func onPostgres(t *testing.T, test func(t *testing.T)) { t.Run(pgtest.PostgresSubtest, test) }

// readCSV reads an export's file.
func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// writeConfig writes a config whose database is the PostgreSQL database at url.
func writeConfig(t *testing.T, url string) string {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	yaml := "database: {url: \"" + url + "\"}\nhttp: {listen: \"127.0.0.1:8080\"}\ncurrency: KES\nshortcode: \"22333\"\ntimezone: Africa/Nairobi\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// The same books exported from SQLite and from PostgreSQL are the same files, but for
// the transfer ids the ledger draws at random and the hashes that cover them; verify
// accepts the PostgreSQL export, and refuses it once a row is changed.
func TestExportFromPostgresIsTheSameAsFromSQLite(t *testing.T) {
	outs := map[string]string{}
	base := t.TempDir() // the subtests' own are gone when they end
	pgtest.Both(t, func(t *testing.T) {
		f := newBooksFixture(t)
		f.seed(t)
		out := filepath.Join(base, pgtest.Driver(t))
		if _, stderr, err := runCmd("export", "-config", f.config, "-out", out); err != nil {
			t.Fatalf("export: %v\n%s", err, stderr)
		}
		outs[pgtest.Driver(t)] = out
	})
	lite, pg := outs[pgtest.SQLiteSubtest], outs[pgtest.PostgresSubtest]
	if pg == "" {
		return // skipped: no PostgreSQL
	}
	stdout, _, err := runCmd("verify", pg)
	if err != nil || !strings.HasPrefix(stdout, "OK\n") {
		t.Fatalf("verify the PostgreSQL export: %v\n%s", err, stdout)
	}
	if !strings.Contains(stdout, "KES          debits KES 1,690.00, credits KES 1,690.00") {
		t.Errorf("verify stdout:\n%s", stdout)
	}
	for _, name := range []string{audit.AccountsFile, audit.AuthEventsFile} {
		a, _ := os.ReadFile(filepath.Join(lite, name))
		b, _ := os.ReadFile(filepath.Join(pg, name))
		if string(a) != string(b) || len(a) == 0 {
			t.Errorf("%s differs:\nSQLite:\n%s\nPostgreSQL:\n%s", name, a, b)
		}
	}
	ja, jb := readCSV(t, filepath.Join(lite, audit.JournalFile)), readCSV(t, filepath.Join(pg, audit.JournalFile))
	if len(ja) != len(jb) || len(ja) != 11 {
		t.Fatalf("journal rows: SQLite %d, PostgreSQL %d", len(ja), len(jb))
	}
	for i := range ja {
		for c := range ja[i] {
			random := i > 0 && (c == 2 || c == 9 || c == 10) // transfer_id, prev_hash, hash
			if c == 9 && i == 1 {
				random = false // the chain starts from the same genesis
			}
			if !random && ja[i][c] != jb[i][c] {
				t.Errorf("journal row %d column %s: SQLite %q, PostgreSQL %q", i, ja[0][c], ja[i][c], jb[i][c])
			}
		}
	}
	ma, mb := readManifest(t, lite), readManifest(t, pg)
	if ma.Format != mb.Format || ma.Period != mb.Period || ma.Chain.FirstSeq != mb.Chain.FirstSeq ||
		ma.Chain.LastSeq != mb.Chain.LastSeq || ma.Chain.FirstPrevHash != mb.Chain.FirstPrevHash ||
		ma.Totals["KES"] != mb.Totals["KES"] {
		t.Errorf("manifests differ:\nSQLite %+v\nPostgreSQL %+v", ma, mb)
	}

	// One amount changed in the PostgreSQL export.
	jb[6][6] = "999"
	tampered := filepath.Join(t.TempDir(), "tampered")
	if err := os.MkdirAll(tampered, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{audit.AccountsFile, audit.AuthEventsFile, audit.ManifestFile} {
		b, _ := os.ReadFile(filepath.Join(pg, name))
		if err := os.WriteFile(filepath.Join(tampered, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	jf, err := os.Create(filepath.Join(tampered, audit.JournalFile))
	if err != nil {
		t.Fatal(err)
	}
	w := csv.NewWriter(jf)
	w.WriteAll(jb)
	jf.Close()
	stdout, _, err = runCmd("verify", tampered)
	if exitCode(err) != 1 || strings.Contains(stdout, "OK") || !strings.HasPrefix(err.Error(), "verify: journal.csv") {
		t.Fatalf("verify of a changed PostgreSQL export: %v (exit %d)\n%s", err, exitCode(err), stdout)
	}
}

// export, settle and backup on a PostgreSQL database that serve never set up say so and
// exit non-zero, and create nothing in it.
func TestCommandsRefuseADatabaseServeNeverSetUp(t *testing.T) {
	onPostgres(t, func(t *testing.T) {
		url := pgtest.URL(t)
		cfg := writeConfig(t, url)
		dir := t.TempDir()
		for _, args := range [][]string{
			{"export", "-config", cfg, "-out", filepath.Join(dir, "audit")},
			{"settle", "-config", cfg, "-date", "2025-03-10", "-out", filepath.Join(dir, "s")},
			{"backup", "-config", cfg, "-out", filepath.Join(dir, "b.dump")},
		} {
			_, _, err := runCmd(args...)
			if exitCode(err) == 0 || err == nil || !strings.Contains(err.Error(), "holds no ledger tables") {
				t.Errorf("%s on an empty database: %v (exit %d)", args[0], err, exitCode(err))
			}
		}
		if err := requireEmpty(context.Background(), config.Database{URL: url}); err != nil {
			t.Errorf("a refused command left tables behind: %v", err)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("refused commands left %v", entries)
		}
	})
}

// A database written by a newer release is refused, as on SQLite (and one at an older
// version is not upgraded by a command either: openExisting; that is serve's, at start).
func TestCommandsRefuseANewerSchema(t *testing.T) {
	onPostgres(t, func(t *testing.T) {
		f := newBooksFixture(t)
		f.seed(t)
		ctx := context.Background()
		if err := f.db.Write(ctx, func(tx store.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE schema_versions SET version = version + 1 WHERE component = ?`, otp.Schema.Component)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		_, _, err := runCmd("export", "-config", f.config, "-out", filepath.Join(t.TempDir(), "a"))
		if exitCode(err) != 1 || !strings.Contains(err.Error(), "newer schema") {
			t.Errorf("export of a newer database: %v (exit %d)", err, exitCode(err))
		}
	})
}

// backup writes pg_dump's archive of one snapshot and says what it holds up to; restore
// rebuilds it into an empty database, verifies the ledger there, and the books it holds
// export to the very same files. restore never overwrites, and says what it cannot do.
func TestBackupAndRestoreOnPostgres(t *testing.T) {
	onPostgres(t, func(t *testing.T) {
		if _, err := postgresTool("pg_dump"); err != nil {
			t.Skip(err)
		}
		f := newBooksFixture(t)
		f.seed(t)
		file := filepath.Join(t.TempDir(), "payswitch.dump")
		stdout, stderr, err := runCmd("backup", "-config", f.config, "-out", file)
		if err != nil {
			t.Fatalf("backup: %v\n%s", err, stderr)
		}
		if !strings.HasPrefix(stdout, "OK backup ") || !strings.Contains(stdout, "journal    last seq 10, hash ") ||
			!strings.Contains(stdout, "ledger     4 accounts, 5 transfers") {
			t.Errorf("backup stdout:\n%s", stdout)
		}
		if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("backup file: %v %v", fi, err)
		}
		if _, _, err := runCmd("backup", "-config", f.config, "-out", file); exitCode(err) != 1 || !strings.Contains(err.Error(), "exists") {
			t.Errorf("backup over an existing file: %v", err)
		}

		target := writeConfig(t, pgtest.URL(t))
		stdout, stderr, err = runCmd("restore", "-config", target, "-from", file)
		if err != nil {
			t.Fatalf("restore: %v\n%s", err, stderr)
		}
		if !strings.HasPrefix(stdout, "OK restored ") || !strings.Contains(stdout, "journal    last seq 10, hash ") ||
			!strings.Contains(stdout, "chain and balances verified") {
			t.Errorf("restore stdout:\n%s", stdout)
		}
		a, b := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
		for _, x := range []struct{ cfg, out string }{{f.config, a}, {target, b}} {
			if _, stderr, err := runCmd("export", "-config", x.cfg, "-out", x.out); err != nil {
				t.Fatalf("export: %v\n%s", err, stderr)
			}
		}
		for _, name := range []string{audit.JournalFile, audit.AccountsFile, audit.AuthEventsFile} {
			x, _ := os.ReadFile(filepath.Join(a, name))
			y, _ := os.ReadFile(filepath.Join(b, name))
			if string(x) != string(y) {
				t.Errorf("%s of the restored database differs from the original's", name)
			}
		}

		// Again into the same database: it is no longer empty.
		if _, _, err := runCmd("restore", "-config", target, "-from", file); exitCode(err) != 1 || !strings.Contains(err.Error(), "never overwrites") {
			t.Errorf("restore over a database: %v", err)
		}
		lite := filepath.Join(t.TempDir(), "sqlite.db")
		if err := os.WriteFile(lite, []byte("SQLite format 3\x00rest of the file"), 0o600); err != nil {
			t.Fatal(err)
		}
		fresh := writeConfig(t, pgtest.URL(t))
		if _, _, err := runCmd("restore", "-config", fresh, "-from", lite); exitCode(err) != 1 || !strings.Contains(err.Error(), "is a SQLite backup") {
			t.Errorf("restore of a SQLite backup into PostgreSQL: %v", err)
		}
		if _, _, err := runCmd("restore", "-config", fresh, "-from", "s3://bucket/db"); exitCode(err) != 1 || !strings.Contains(err.Error(), "replicas") {
			t.Errorf("restore of a replica into PostgreSQL: %v", err)
		}
		if _, _, err := runCmd("restore", "-config", fresh, "-from", "s3://bucket/db", "-at", "2026-01-01T00:00:00Z"); exitCode(err) != 2 {
			t.Errorf("restore -at into PostgreSQL: %v (exit %d), want a usage error", err, exitCode(err))
		}
	})
}

// The password of database.url reaches pg_dump and pg_restore in their environment,
// never on their command line.
func TestPostgresToolsGetThePasswordInTheEnvironment(t *testing.T) {
	for _, url := range []string{
		"postgres://payswitch:s3cret@db1:5432,db2:5432/payswitch?target_session_attrs=read-write",
		"postgres://payswitch@db1/payswitch?password=s3cret&sslmode=require",
	} {
		cmd, err := postgresToolCommand(context.Background(), "/bin/true", url, "--format=custom")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(strings.Join(cmd.Args, " "), "s3cret") {
			t.Errorf("password on the command line: %q", cmd.Args)
		}
		if !strings.Contains(strings.Join(cmd.Args, " "), "--dbname=postgres://payswitch@db1") {
			t.Errorf("args %q", cmd.Args)
		}
		var found bool
		for _, e := range cmd.Env {
			found = found || e == "PGPASSWORD=s3cret"
		}
		if !found {
			t.Errorf("PGPASSWORD not in the environment of %q", url)
		}
	}
}

// settle's look for the payments table asks each database's own catalogue.
func TestHasTableOnBothDrivers(t *testing.T) {
	pgtest.Both(t, func(t *testing.T) {
		f := newBooksFixture(t)
		ctx := context.Background()
		for name, want := range map[string]bool{"entries": true, "payments": false} {
			if got, err := hasTable(ctx, f.db, name); err != nil || got != want {
				t.Errorf("hasTable(%s) = %v %v, want %v", name, got, err, want)
			}
		}
		if _, err := ledger.New(f.db, nil).Verify(ctx); err != nil {
			t.Fatal(err)
		}
	})
}
