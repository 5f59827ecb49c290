package pgtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

func TestEachURLIsAnEmptyDatabaseOfItsOwn(t *testing.T) {
	ctx := context.Background()
	a, b := URL(t), URL(t)
	if a == b {
		t.Fatalf("two tests' databases share a URL: %s", a)
	}
	ca, err := pgx.Connect(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close(ctx)
	if _, err := ca.Exec(ctx, "CREATE TABLE x (n INT)"); err != nil {
		t.Fatal(err)
	}
	cb, err := pgx.Connect(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close(ctx)
	var n int
	if err := cb.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 'x'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatal("a table made in one test's database is in another's")
	}
	var version int
	if err := ca.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&version); err != nil {
		t.Fatal(err)
	}
	if version < minVersion*10000 {
		t.Fatalf("server version %d, want %d or later", version, minVersion)
	}
	var user string
	if err := ca.QueryRow(ctx, "SELECT current_user").Scan(&user); err != nil {
		t.Fatal(err)
	}
	if user != "postgres" {
		t.Fatalf("connected as %q, want postgres", user)
	}
}

func TestSanitizeFitsADatabaseName(t *testing.T) {
	for in, want := range map[string]string{
		"TestX/postgres":   "testx_postgres",
		"Test Ünïcode-%/a": "test__n_code___a",
	} {
		if got := sanitize(in); got != want {
			t.Errorf("sanitize(%q) = %q, want %q", in, got, want)
		}
	}
	if got := sanitize("TestAVeryLongNameThatGoesOnAndOnBeyondForty/sub"); len(got) != 40 {
		t.Errorf("sanitize of a long name has %d bytes, want 40", len(got))
	}
}

// fakeBinaries writes initdb and postgres scripts into a new folder, postgres saying it
// is version; it returns the folder.
func fakeBinaries(t *testing.T, version string) string {
	dir := t.TempDir()
	for name, script := range map[string]string{
		"initdb":   "#!/bin/sh\nexit 1\n",
		"postgres": "#!/bin/sh\necho 'postgres (PostgreSQL) " + version + "'\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestMissingOrOldBinariesSkipUnlessRequired(t *testing.T) {
	saved := debianBins
	t.Cleanup(func() { debianBins = saved })
	debianBins = filepath.Join(t.TempDir(), "*", "bin")
	t.Setenv("PATH", t.TempDir())

	t.Setenv("PAYSWITCH_POSTGRES_BIN", t.TempDir())
	_, err := findBinaries()
	if !errNotInstalled(err) {
		t.Fatalf("no binaries anywhere: %v, want errNoBinaries", err)
	}
	t.Setenv(RequireEnv, "")
	if !skips(err) {
		t.Error("without binaries a test skips")
	}
	t.Setenv(RequireEnv, "1")
	if skips(err) {
		t.Errorf("without binaries and %s=1 a test fails", RequireEnv)
	}

	t.Setenv("PAYSWITCH_POSTGRES_BIN", fakeBinaries(t, "14.9"))
	if _, err = findBinaries(); !errNotInstalled(err) || !strings.Contains(err.Error(), "need PostgreSQL 15") {
		t.Fatalf("only version 14: %v, want a word on the version needed", err)
	}
	fake := fakeBinaries(t, "16.2 (Debian)")
	t.Setenv("PAYSWITCH_POSTGRES_BIN", fake)
	if dir, err := findBinaries(); err != nil || dir != fake {
		t.Fatalf("version 16 = %q, %v; want %s", dir, err, fake)
	}
}

func TestServerRunsAsAnUnprivilegedUser(t *testing.T) {
	URL(t) // the shared server is up
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", shared.srv.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	var uid int
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
			fmt.Sscan(rest, &uid)
		}
	}
	if uid == 0 || (os.Geteuid() != 0 && uid != os.Geteuid()) {
		t.Fatalf("postgres runs as uid %d (this process as %d): want nobody when root, else this user", uid, os.Geteuid())
	}
	if fi, err := os.Stat(shared.srv.Dir()); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("the server's folder: %v, %v; want it private (0700)", fi.Mode(), err)
	}
}

// TestBothNamesItsSubtestsAsTheDrivers: Both's subtests say which driver they are, by
// the names store's dialects have, at any depth below them.
func TestBothNamesItsSubtestsAsTheDrivers(t *testing.T) {
	var seen []string
	Both(t, func(t *testing.T) {
		seen = append(seen, Driver(t))
		t.Run("inner", func(t *testing.T) {
			if Driver(t) != seen[len(seen)-1] || OnPostgres(t) != (seen[len(seen)-1] == "postgres") {
				t.Errorf("inner subtest of %s: %s", seen[len(seen)-1], Driver(t))
			}
		})
	})
	if len(seen) != 2 || seen[0] != "sqlite" || seen[1] != "postgres" || Driver(t) != "sqlite" {
		t.Fatalf("drivers %v, outside %s", seen, Driver(t))
	}
}
