package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/tools/smscsim"
)

// startWithSecretFile starts a switch whose database is in dir/data and whose otp
// section names no key (secret_file as given), with its log in log.
func startWithSecretFile(t *testing.T, dir, secretFile string, log *logBuffer) *app {
	t.Helper()
	sim, err := smscsim.Start(smscsim.Config{Listen: "127.0.0.1:0", Accounts: map[string]string{"payswitch": "pw"}, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	s := &testSwitch{t: t, dir: filepath.Join(dir, "data"), sim: sim, ttl: "5m"}
	cfg := s.config()
	cfg.OTP.Secret, cfg.OTP.SecretFile = "", secretFile
	a, err := startApp(context.Background(), cfg, zerolog.New(log))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// With nothing configured the key is made in the user's config folder, not beside the
// database, so that a copy of the data folder does not carry it.
func TestOTPSecretDefaultsOutsideTheDataFolder(t *testing.T) {
	home := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, "config"))
	t.Setenv("HOME", home)
	t.Setenv(secretFileEnv, "")
	dir := t.TempDir()
	var log logBuffer
	startWithSecretFile(t, dir, "", &log)

	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), "secret") {
			t.Errorf("%s: a key file under the database's folder", p)
		}
		return nil
	})
	key := filepath.Join(home, "config", "payswitch", "otp.secret")
	for p, want := range map[string]os.FileMode{key: 0o600, filepath.Dir(key): 0o700} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v, %v; want mode %#o", p, fi, err, want)
		}
	}
	if n := log.count("OTP KEY FILE IS IN THE DATABASE'S FOLDER"); n != 0 {
		t.Errorf("warned about a key that is not beside the database:\n%s", log.String())
	}
}

func TestOTPSecretFileFromEnvironment(t *testing.T) {
	key := filepath.Join(t.TempDir(), "keys", "otp.secret")
	t.Setenv(secretFileEnv, key)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(t.TempDir(), "unused"))
	startWithSecretFile(t, t.TempDir(), "", &logBuffer{})
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: %v, %v; want the key there, mode 0600", key, fi, err)
	}
}

// A key file that an operator put in (or under) the database's folder still works, and
// serve says loudly at every start that a copy of that folder carries it.
func TestOTPSecretInTheDataFolderWarns(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(t.TempDir(), "unused"))
	for _, rel := range []string{"otp.secret", filepath.Join("keys", "otp.secret")} {
		t.Run(rel, func(t *testing.T) {
			dir := t.TempDir()
			var log logBuffer
			startWithSecretFile(t, dir, filepath.Join(dir, "data", rel), &log)
			if n := log.count(`"level":"warn"`, "OTP KEY FILE IS IN THE DATABASE'S FOLDER", rel); n != 1 {
				t.Errorf("%d warnings naming the key file, want 1:\n%s", n, log.String())
			}
			if strings.Contains(log.String(), "secret\":") {
				t.Errorf("the log shows something called secret:\n%s", log.String())
			}
		})
	}
}

// A database made by an earlier release has its key beside it: serve keeps using that key
// (codes waiting at the upgrade still work) and warns until it is moved.
func TestOTPSecretOfAnEarlierReleaseIsKept(t *testing.T) {
	home := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, "config"))
	t.Setenv(secretFileEnv, "")
	dir := t.TempDir()
	legacy := filepath.Join(dir, "data", "otp.secret")
	if err := os.MkdirAll(filepath.Dir(legacy), 0o700); err != nil {
		t.Fatal(err)
	}
	old := []byte(strings.Repeat("ab", 32) + "\n")
	if err := os.WriteFile(legacy, old, 0o600); err != nil {
		t.Fatal(err)
	}
	var log logBuffer
	startWithSecretFile(t, dir, "", &log)
	if got, err := os.ReadFile(legacy); err != nil || string(got) != string(old) {
		t.Errorf("the earlier key changed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(home, "config", "payswitch", "otp.secret")); !os.IsNotExist(err) {
		t.Errorf("a second key was made in the config folder (%v): live codes would die", err)
	}
	if n := log.count("OTP KEY FILE IS IN THE DATABASE'S FOLDER"); n != 1 {
		t.Errorf("%d warnings, want 1:\n%s", n, log.String())
	}
}

func TestWithin(t *testing.T) {
	base := t.TempDir()
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(base, link); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		dir, path string
		want      bool
	}{
		{base, filepath.Join(base, "otp.secret"), true},
		{base, filepath.Join(base, "a", "b", "otp.secret"), true},
		{link, filepath.Join(base, "otp.secret"), true},
		{base, filepath.Join(link, "otp.secret"), true},
		{filepath.Join(base, "data"), filepath.Join(base, "data2", "otp.secret"), false},
		{filepath.Join(base, "data"), filepath.Join(base, "otp.secret"), false},
		{"data", "data/otp.secret", true},
		{"data", "../otp.secret", false},
	} {
		if got := within(c.dir, c.path); got != c.want {
			t.Errorf("within(%q, %q) = %v, want %v", c.dir, c.path, got, c.want)
		}
	}
}
