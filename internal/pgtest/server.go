package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// minVersion is the oldest PostgreSQL the switch supports (CONTRACT.md section 13).
const minVersion = 15

// errNoBinaries is Start's error when no PostgreSQL binaries are found.
var errNoBinaries = errors.New("no PostgreSQL binaries found")

func errNotInstalled(err error) bool { return errors.Is(err, errNoBinaries) }

// Server is a running throwaway PostgreSQL.
type Server struct {
	dir  string // holds data, sock and the log; removed by Stop
	port int
	cmd  *exec.Cmd
	exit chan error // the server's exit, once

	bin      string              // the folder of the PostgreSQL binaries
	cred     *syscall.Credential // the user it runs as; nil: this process's
	settings []string            // name=value, each passed as -c after the defaults
}

// URL is the URL of database name on the server, over loopback TCP as superuser postgres.
func (s *Server) URL(name string) string {
	return fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable", s.Addr(), name)
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// Dir is the folder that holds the server's data, socket and log (log.txt).
func (s *Server) Dir() string { return s.dir }

// Start makes a cluster with initdb in a new temporary folder and starts it on a free
// loopback port, as nobody when the process runs as root. It returns once the server
// takes connections.
func Start() (*Server, error) {
	durability := "off"
	if os.Getenv(DurableEnv) == "1" {
		durability = "on"
	}
	s, err := newServer(durable(durability))
	if err != nil {
		return nil, err
	}
	if err := s.initdb(); err != nil {
		s.Stop()
		return nil, err
	}
	if err := s.listen(); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// durable is the settings that make a server sync its commits ("on") or not ("off").
func durable(onOff string) []string {
	return []string{"fsync=" + onOff, "synchronous_commit=" + onOff, "full_page_writes=" + onOff}
}

// newServer finds the binaries and the user to run them as, and makes the server's
// folder (with its socket folder) for that user; it starts nothing.
func newServer(settings []string) (*Server, error) {
	bin, err := findBinaries()
	if err != nil {
		return nil, err
	}
	cred, err := credential()
	if err != nil {
		return nil, err
	}
	base := os.TempDir()
	if cred != nil && !searchableByAll(base) {
		base = "/tmp" // the server's user must reach its folder
	}
	dir, err := os.MkdirTemp(base, "pgtest-")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, bin: bin, cred: cred, settings: settings}
	sock := filepath.Join(s.dir, "sock")
	if err := os.Mkdir(sock, 0o700); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if cred != nil {
		for _, p := range []string{s.dir, sock} {
			if err := os.Chown(p, int(cred.Uid), int(cred.Gid)); err != nil {
				os.RemoveAll(dir)
				return nil, fmt.Errorf("give %s to the server's user: %w", p, err)
			}
		}
	}
	return s, nil
}

func (s *Server) data() string { return filepath.Join(s.dir, "data") }

// run runs one of PostgreSQL's programs as the server's user, its output in the log.
func (s *Server) run(program string, args ...string) error {
	logf, err := s.log()
	if err != nil {
		return err
	}
	defer logf.Close()
	if err := command(filepath.Join(s.bin, program), s.cred, logf, args...).Run(); err != nil {
		return fmt.Errorf("%s: %w\n%s", program, err, s.logTail())
	}
	return nil
}

func (s *Server) log() (*os.File, error) {
	return os.OpenFile(filepath.Join(s.dir, "log.txt"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
}

// initdb makes a new cluster in the server's folder.
func (s *Server) initdb() error {
	return s.run("initdb", "-D", s.data(), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync")
}

// listen starts the server on a free port.
func (s *Server) listen() error {
	var lastErr error
	for range 3 { // a free port may be taken between finding it and the server binding it
		port, err := freePort()
		if err != nil {
			return err
		}
		s.port = port
		if lastErr = s.launch(); lastErr == nil {
			return nil
		}
	}
	return lastErr
}

// launch starts postgres on s.port and waits until it answers.
func (s *Server) launch() error {
	logf, err := s.log()
	if err != nil {
		return err
	}
	defer logf.Close() // postgres has its own copy
	args := []string{"-D", s.data(), "-p", strconv.Itoa(s.port),
		"-k", filepath.Join(s.dir, "sock"), "-c", "listen_addresses=127.0.0.1",
		"-c", "max_connections=400", "-c", "shared_buffers=64MB",
		// Deadlocks are part of what tests provoke: find them in a tenth of the default.
		"-c", "deadlock_timeout=100ms"}
	for _, kv := range s.settings {
		args = append(args, "-c", kv)
	}
	s.cmd = command(filepath.Join(s.bin, "postgres"), s.cred, logf, args...)
	if err := s.cmd.Start(); err != nil {
		s.cmd = nil
		return fmt.Errorf("start postgres: %w", err)
	}
	s.exit = make(chan error, 1)
	go func(cmd *exec.Cmd, exit chan error) { exit <- cmd.Wait() }(s.cmd, s.exit)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := pgx.Connect(ctx, s.URL("postgres"))
		cancel()
		if err == nil {
			conn.Close(context.Background())
			return nil
		}
		select {
		case werr := <-s.exit:
			s.cmd = nil
			return fmt.Errorf("postgres exited (%v)\n%s", werr, s.logTail())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres did not answer in 30s: %v\n%s", err, s.logTail())
		}
	}
}

// kill ends the server and every process of it at once with SIGKILL, as a machine that
// loses power would: no shutdown, no goodbye to the clients (the kernel closes their
// sockets). The folder stays, so the server can start again and recover.
func (s *Server) kill() error {
	if s.cmd == nil || s.cmd.Process == nil {
		return errors.New("pgtest: the server is not running")
	}
	// The postmaster leads a process group of its own (sysProcAttr), but each of its
	// children (backends, WAL sender, writers) calls setsid and leads one of its own: a
	// child left alive would answer its client until it noticed the postmaster's death.
	// The children are killed first, as a machine's death kills them, then the postmaster.
	for _, child := range childrenOf(s.cmd.Process.Pid) {
		syscall.Kill(-child, syscall.SIGKILL)
		syscall.Kill(child, syscall.SIGKILL)
	}
	err := syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.exit
	s.cmd = nil
	return err
}

// childrenOf lists the processes whose parent is pid (from /proc; none elsewhere).
func childrenOf(pid int) []int {
	dirs, _ := os.ReadDir("/proc")
	var kids []int
	for _, d := range dirs {
		id, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses, so read after
		// its last ')'.
		rest := string(stat[strings.LastIndexByte(string(stat), ')')+1:])
		if f := strings.Fields(rest); len(f) > 1 && f[1] == strconv.Itoa(pid) {
			kids = append(kids, id)
		}
	}
	return kids
}

// Stop shuts the server down (fast shutdown: sessions are ended) and removes its folder.
func (s *Server) Stop() error {
	var err error
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-s.exit:
		case <-time.After(15 * time.Second):
			syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			<-s.exit
			err = errors.New("postgres did not stop in 15s; killed")
		}
		s.cmd = nil
	}
	return errors.Join(err, os.RemoveAll(s.dir))
}

// logTail is the end of the server's log, for an error message.
func (s *Server) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "log.txt"))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

func command(path string, cred *syscall.Credential, logf *os.File, args ...string) *exec.Cmd {
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = "/"
	cmd.SysProcAttr = sysProcAttr(cred)
	// The caller's PG* variables (PGDATA, PGPORT, ...) must not steer the test's server.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "LC_ALL=C", "TZ=UTC")
	return cmd
}

// credential is the user the server runs as: nil (this process's) unless this process
// is root, which PostgreSQL refuses; then nobody.
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		return nil, fmt.Errorf("running as root and no user nobody to run PostgreSQL as: %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("user nobody: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
}

// searchableByAll reports whether every user may pass through dir and each folder above it.
func searchableByAll(dir string) bool {
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return false
		}
		if d == filepath.Dir(d) {
			return true
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

var versionRe = regexp.MustCompile(`\(PostgreSQL\) (\d+)`)

// debianBins is where Debian's postgresql packages put each version's binaries.
var debianBins = "/usr/lib/postgresql/*/bin"

// findBinaries returns the folder of initdb and postgres of version minVersion or later.
func findBinaries() (string, error) {
	var candidates []string
	if dir := os.Getenv("PAYSWITCH_POSTGRES_BIN"); dir != "" {
		candidates = append(candidates, dir)
	}
	dirs, _ := filepath.Glob(debianBins)
	sort.Slice(dirs, func(i, j int) bool { return versionOfDir(dirs[i]) > versionOfDir(dirs[j]) })
	candidates = append(candidates, dirs...)
	if p, err := exec.LookPath("initdb"); err == nil {
		candidates = append(candidates, filepath.Dir(p))
	}
	var seen []string
	for _, dir := range candidates {
		postgres := filepath.Join(dir, "postgres")
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err != nil {
			continue
		}
		out, err := exec.Command(postgres, "--version").Output()
		if err != nil {
			continue
		}
		m := versionRe.FindSubmatch(out)
		if m == nil {
			continue
		}
		if v, _ := strconv.Atoi(string(m[1])); v >= minVersion {
			return dir, nil
		}
		seen = append(seen, strings.TrimSpace(string(out))+" in "+dir)
	}
	if len(seen) > 0 {
		return "", fmt.Errorf("%w: need PostgreSQL %d or later, found %s", errNoBinaries, minVersion, strings.Join(seen, "; "))
	}
	return "", fmt.Errorf("%w (looked in $PAYSWITCH_POSTGRES_BIN, /usr/lib/postgresql/*/bin and PATH; "+
		"Debian: apt-get install postgresql)", errNoBinaries)
}

// versionOfDir is the version in /usr/lib/postgresql/<version>/bin, 0 if none.
func versionOfDir(dir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return v
}

// CreateDatabase makes the empty database name on s and returns its URL, for tools that
// run the switch on a server of their own (tests use URL, which also drops it).
func (s *Server) CreateDatabase(ctx context.Context, name string) (string, error) {
	if err := createDatabase(ctx, s.URL("postgres"), name); err != nil {
		return "", err
	}
	return s.URL(name), nil
}

// createDatabase makes the empty database name through the server that admin (a URL)
// reaches.
func createDatabase(ctx context.Context, admin, name string) error {
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("pgtest: create database %s: %w", name, err)
	}
	return nil
}
