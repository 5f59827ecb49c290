// Command phone lets a person play a feature phone against payswitch's demo
// SMSC: it prints the phone's recent SMS, then every SMS it receives, and sends
// each line typed as an SMS to the short code.
//
//	go run ./tools/phone [-api 127.0.0.1:2790] [-to 22333] 254700000001
//
// It talks to the phone API of tools/smscsim, which `payswitch serve` starts
// with smpp.demo_smsc.phone_api set.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdin, os.Stdout); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "phone:", err)
		}
		os.Exit(1)
	}
}

// mt is the part of smscsim.MT the phone shows.
type mt struct {
	ID     string `json:"id"`
	From   string `json:"from"`
	Text   string `json:"text"`
	Status string `json:"status"`
}

// run connects to the phone API, then prints MTs for the number as they
// arrive and sends each stdin line as an MO, until ctx ends or the API goes
// away. At the end of stdin it keeps printing what arrives.
func run(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("phone", flag.ContinueOnError)
	fs.SetOutput(stdout)
	api := fs.String("api", "127.0.0.1:2790", "address of the demo SMSC's phone API")
	to := fs.String("to", "22333", "the short code each typed line is sent to")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: phone [flags] MSISDN

phone plays the feature phone MSISDN: it prints the last few SMS the number
received before it started, then every SMS to it as it arrives ("< from: text"),
and sends each line you type to the short code ("> text"). Ctrl-C quits.

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("want exactly one MSISDN, e.g. 254700000001")
	}
	msisdn := fs.Arg(0)
	base := "http://" + *api

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/mt?msisdn="+url.QueryEscape(msisdn), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the phone API at %s (is payswitch serve running with smpp.demo_smsc.phone_api?): %w", *api, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("phone API at %s answered %s", *api, resp.Status)
	}

	out := &lockedWriter{w: stdout}
	// The history is read once the stream is open, so that nothing falls between
	// the two; what is in both is printed once.
	shown, err := printHistory(ctx, base, msisdn, out)
	if err != nil {
		out.printf("! no earlier messages: %v\n", err)
	}
	out.printf("phone %s ready; texts go to %s\n", msisdn, *to)
	streamDone := make(chan error, 1)
	go func() { streamDone <- printMTs(resp.Body, out, shown) }()
	go func() {
		sendLines(ctx, base, msisdn, *to, stdin, out)
	}()

	select {
	case <-ctx.Done():
		return nil
	case err := <-streamDone:
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			err = errors.New("stream ended")
		}
		return fmt.Errorf("lost the phone API at %s: %w", *api, err)
	}
}

// recentShown is how many earlier messages the phone shows on start: enough for
// the code and the receipt of the last payment or two, not a screenful of old ones.
const recentShown = 10

// printHistory prints the last recentShown delivered MTs that the simulator kept
// for msisdn (GET /mt/history) and returns the IDs of all it kept, which the
// stream may carry again.
func printHistory(ctx context.Context, base, msisdn string, out *lockedWriter) (map[string]bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/mt/history?msisdn="+url.QueryEscape(msisdn), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /mt/history answered %s", resp.Status)
	}
	var kept []mt
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&kept); err != nil {
		return nil, fmt.Errorf("read /mt/history: %w", err)
	}
	seen := make(map[string]bool, len(kept))
	var delivered []mt
	for _, m := range kept {
		seen[m.ID] = true
		if visible(m) {
			delivered = append(delivered, m)
		}
	}
	if len(delivered) > recentShown {
		delivered = delivered[len(delivered)-recentShown:]
	}
	for _, m := range delivered {
		printMT(out, m)
	}
	return seen, nil
}

// printMTs prints each delivered MT of the stream until it ends, except those
// whose ID is in shown (already printed from the history).
func printMTs(r io.Reader, out *lockedWriter, shown map[string]bool) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var m mt
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			out.printf("! unreadable message: %v\n", err)
			continue
		}
		if !visible(m) || m.ID != "" && shown[m.ID] {
			continue
		}
		printMT(out, m)
	}
	return sc.Err()
}

// visible reports whether the phone shows m: an unreachable phone never sees it.
func visible(m mt) bool { return m.Status == "" || m.Status == "DELIVRD" }

func printMT(out *lockedWriter, m mt) {
	// Continuation lines are indented so a multi-line SMS reads as one.
	out.printf("< %s: %s\n", m.From, strings.ReplaceAll(m.Text, "\n", "\n    "))
}

// sendLines posts each non-empty stdin line as an MO.
func sendLines(ctx context.Context, base, from, to string, stdin io.Reader, out *lockedWriter) {
	client := &http.Client{Timeout: 10 * time.Second}
	sc := bufio.NewScanner(stdin)
	for sc.Scan() {
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		out.printf("> %s\n", text) // before sending, so a fast reply prints after it
		body, _ := json.Marshal(map[string]string{"from": from, "to": to, "text": text})
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/mo", bytes.NewReader(body))
		if err != nil {
			out.printf("! not sent: %v\n", err)
			continue
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			out.printf("! not sent: %v\n", err)
			continue
		}
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			out.printf("! not sent: %s %s\n", resp.Status, bytes.TrimSpace(msg))
		}
	}
}

// lockedWriter serializes the printing of the two directions.
type lockedWriter struct {
	mu sync.Mutex // guards w
	w  io.Writer
}

func (l *lockedWriter) printf(format string, a ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, format, a...)
}
