// Command smscsim runs the demo SMSC on its own: an SMPP server that ESMEs
// (payswitch's links) bind to, and an HTTP phone API for tools/phone.
//
//	go run ./tools/smscsim/cmd/smscsim -listen 127.0.0.1:2775 -phone-api 127.0.0.1:2790 -account payswitch:secret
//
// Without -account any system_id may bind, with any password but an empty one. Both
// addresses must be on loopback: the phone API shows every SMS, codes included.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/payswitch/payswitch/tools/smscsim"
	"github.com/rs/zerolog"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr, nil); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "smscsim:", err)
		}
		os.Exit(2)
	}
}

// accounts collects repeated -account system_id:password flags.
type accounts map[string]string

func (a accounts) String() string { return fmt.Sprintf("%d accounts", len(a)) }

func (a accounts) Set(v string) error {
	id, pw, ok := strings.Cut(v, ":")
	if !ok || id == "" {
		return fmt.Errorf("want system_id:password, got %q", v)
	}
	a[id] = pw
	return nil
}

// run starts the simulator and serves until ctx ends. started, when not
// nil, receives the running sim (for tests).
func run(ctx context.Context, args []string, stderr io.Writer, started func(*smscsim.Sim)) error {
	fs := flag.NewFlagSet("smscsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: smscsim [flags]

smscsim is payswitch's demo SMSC. ESMEs bind to it over SMPP 3.4; simulated
phones send MO through its phone API (POST /mo), read MT from it
(GET /mt?msisdn=N, a stream of JSON lines), and dial and answer USSD
(POST /ussd, GET /ussd?msisdn=N). Run tools/phone to play a phone.

Flags:
`)
		fs.PrintDefaults()
	}
	accts := accounts{}
	cfg := smscsim.Config{Accounts: accts}
	fs.StringVar(&cfg.Listen, "listen", "127.0.0.1:2775", "SMPP listen address")
	fs.StringVar(&cfg.PhoneAPI, "phone-api", "127.0.0.1:2790", `phone API listen address; "" turns it off`)
	fs.Var(accts, "account", "system_id:password an ESME may bind with (repeatable; none = any system_id, with a non-empty password)")
	fs.DurationVar(&cfg.ReceiptDelay, "receipt-delay", smscsim.DefaultReceiptDelay, "delay before a delivery receipt")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	cfg.Log = zerolog.New(zerolog.ConsoleWriter{Out: stderr, TimeFormat: time.TimeOnly}).With().Timestamp().Logger()

	sim, err := smscsim.Start(cfg)
	if err != nil {
		return err
	}
	if started != nil {
		started(sim)
	}
	<-ctx.Done()
	return sim.Close()
}
