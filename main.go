// Command payswitch is a remote payment switch for feature phones: payments by SMS, USSD
// and voice, confirmed by one-time codes and booked in a double-entry ledger in SQLite.
//
//	payswitch serve  [-config config.yaml]     run the switch
//	payswitch export -config config.yaml -out DIR [-from T] [-to T]
//	payswitch verify DIR
//	payswitch settle -config config.yaml -date YYYY-MM-DD -out DIR
//	payswitch backup -config config.yaml -out FILE
//	payswitch restore -config config.yaml -from FILE|URL [-at T]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "payswitch:", err)
		}
		var ec exitCoder
		if errors.As(err, &ec) {
			os.Exit(ec.ExitCode())
		}
		os.Exit(1)
	}
}

// exitCoder is an error that chooses the process's exit code.
type exitCoder interface{ ExitCode() int }

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg + "\n" + usage }
func (e usageError) ExitCode() int { return 2 }

const usage = `usage:
  payswitch serve  [-config config.yaml]
  payswitch export -config config.yaml -out DIR [-from RFC3339] [-to RFC3339]
  payswitch verify DIR
  payswitch settle -config config.yaml -date YYYY-MM-DD -out DIR
  payswitch backup -config config.yaml -out FILE
  payswitch restore -config config.yaml -from FILE|URL [-at RFC3339]`

// run dispatches to a subcommand; tests call it directly.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{"no command given"}
	}
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:], stdout, stderr)
	case "export":
		return runExport(ctx, args[1:], stdout, stderr)
	case "verify":
		return runVerify(ctx, args[1:], stdout, stderr)
	case "settle":
		return runSettle(ctx, args[1:], stdout, stderr)
	case "backup":
		return runBackup(ctx, args[1:], stdout, stderr)
	case "restore":
		return runRestore(ctx, args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	return usageError{fmt.Sprintf("unknown command %q", args[0])}
}
