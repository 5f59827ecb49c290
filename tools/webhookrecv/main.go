// Command webhookrecv is a merchant's system in miniature: it receives payswitch's
// webhooks (contract section 10), checks each one's signature and prints a line per
// event, so that one can watch a payment reach a merchant.
//
//	WEBHOOK_SECRET=... go run ./tools/webhookrecv [-listen 127.0.0.1:9090]
//
// Set the merchant's webhook to http://127.0.0.1:9090/ with the same secret (PUT
// /api/v1/merchants/{id}/webhook). Each request is checked with webhook.Verify: a
// missing, forged or stale signature (older than -tolerance) is answered 400 and
// printed as rejected; a good one is answered 200 and printed as
//
//	evt_0p8sl3w2c4k1m9x7q5zr payment.completed PAY7K2M9QX4 KES 150.00 completed
//
// An event seen before (the switch retries until it gets a 2xx) is answered 200 again
// and printed as a duplicate, not processed twice.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	payswitch "github.com/payswitch/payswitch/switch"
	"github.com/payswitch/payswitch/webhook"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "webhookrecv:", err)
		}
		os.Exit(1)
	}
}

// run listens until ctx ends, printing to stdout.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("webhookrecv", flag.ContinueOnError)
	fs.SetOutput(stdout)
	listen := fs.String("listen", "127.0.0.1:9090", "address to listen on (host:port)")
	secret := fs.String("secret", "", "the merchant's webhook secret (default: $WEBHOOK_SECRET)")
	tolerance := fs.Duration("tolerance", webhook.DefaultTolerance, "how old a signature may be")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: webhookrecv [flags]

webhookrecv receives payswitch's webhooks as a merchant's system would: it checks
each request's Payswitch-Signature with the merchant's secret, answers 200 to a good
one and 400 to a bad one, and prints a line per event: event ID, type, payment ID,
amount and state. An event received twice is printed as a duplicate.

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *secret == "" {
		*secret = getenv("WEBHOOK_SECRET")
	}
	if *secret == "" {
		return errors.New("no secret: pass -secret or set WEBHOOK_SECRET to the merchant's webhook secret")
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	out := &lockedWriter{w: stdout}
	srv := &http.Server{Handler: newReceiver([]byte(*secret), *tolerance, time.Now, out), ReadHeaderTimeout: 10 * time.Second}
	out.printf("webhookrecv: listening on http://%s/\n", ln.Addr())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}

// maxBody is the largest request read, beyond webhook.MaxBody.
const maxBody = webhook.MaxBody + 1<<10

// maxSeen is how many event IDs are remembered for spotting duplicates.
const maxSeen = 10000

// receiver answers the switch's deliveries.
type receiver struct {
	secret    []byte
	tolerance time.Duration
	now       func() time.Time
	out       *lockedWriter

	mu   sync.Mutex      // guards seen and ring
	seen map[string]bool // event IDs processed
	ring []string        // the same, oldest first, to forget the oldest past maxSeen
}

func newReceiver(secret []byte, tolerance time.Duration, now func() time.Time, out *lockedWriter) *receiver {
	return &receiver{secret: secret, tolerance: tolerance, now: now, out: out, seen: map[string]bool{}}
}

// event is what the receiver reads of a delivery.
type event struct {
	ID        string                `json:"id"`
	Type      string                `json:"type"`
	CreatedAt string                `json:"created_at"`
	Data      payswitch.PaymentView `json:"data"`
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		refuse(w, http.StatusMethodNotAllowed, "method_not_allowed", "POST events here")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		refuse(w, http.StatusRequestEntityTooLarge, "too_large", "the body is too large or unreadable")
		return
	}
	// The signature is checked on the raw bytes, before anything is parsed.
	if err := webhook.Verify(r.Header.Get(webhook.SignatureHeader), rc.secret, body, rc.now(), rc.tolerance); err != nil {
		rc.out.printf("rejected from %s: %v\n", r.RemoteAddr, err)
		refuse(w, http.StatusBadRequest, "bad_signature", err.Error())
		return
	}
	var ev event
	if err := json.Unmarshal(body, &ev); err != nil || ev.ID == "" {
		rc.out.printf("rejected from %s: signed, but not an event\n", r.RemoteAddr)
		refuse(w, http.StatusBadRequest, "bad_event", "not an event")
		return
	}
	line := fmt.Sprintf("%s %s %s %s %s", ev.ID, ev.Type, ev.Data.ID, payswitch.FormatMoney(ev.Data.Currency, ev.Data.Amount),
		ev.Data.State)
	if rc.remember(ev.ID) {
		rc.out.printf("%s\n", line)
	} else {
		rc.out.printf("%s (duplicate: already processed)\n", line)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`{"received":true}` + "\n"))
}

// remember records id and reports whether it is new.
func (rc *receiver) remember(id string) bool {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.seen[id] {
		return false
	}
	rc.seen[id] = true
	rc.ring = append(rc.ring, id)
	if len(rc.ring) > maxSeen {
		delete(rc.seen, rc.ring[0])
		rc.ring = rc.ring[1:]
	}
	return true
}

func refuse(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

// lockedWriter lets the handlers of concurrent requests print whole lines.
type lockedWriter struct {
	mu sync.Mutex // guards w
	w  io.Writer
}

func (l *lockedWriter) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, format, args...)
}
