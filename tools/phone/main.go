// Command phone lets a person play a feature phone against payswitch's demo
// SMSC: it prints the phone's recent SMS, then every SMS it receives, and sends
// each line typed as an SMS to the short code. It plays USSD too: a line such as
// *384# dials the service code, and while a USSD screen waits for an answer
// (the menus' next screen, or a merchant's request pushed to the phone), what
// is typed answers it.
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
	"sync/atomic"
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
	// USSD holds the hex of ussd_service_op (and its_session_info) of a USSD message.
	USSD map[string]string `json:"ussd"`
}

// opUSSRRequest is ussd_service_op 2 in hex: a USSD screen that waits for an answer.
const opUSSRRequest = "02"

// screen is the part of smscsim.USSDScreen the phone shows.
type screen struct {
	From string `json:"from"`
	Text string `json:"text"`
	Open bool   `json:"open"`
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
and sends each line you type to the short code ("> text"). A line such as *384#
dials USSD; a USSD screen shows as "< USSD from: text", and while one waits for
an answer ("(type your answer)"), the line you type answers it ("> USSD: 1").
Ctrl-C quits.

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
	var waiting atomic.Bool // a USSD screen waits for the phone's answer
	showOpenScreen(ctx, base, msisdn, out, &waiting)
	out.printf("phone %s ready; texts go to %s, *...# dials USSD, and a USSD screen that waits takes what you type\n", msisdn, *to)
	streamDone := make(chan error, 1)
	go func() { streamDone <- printMTs(resp.Body, out, shown, &waiting) }()
	go func() {
		sendLines(ctx, base, msisdn, *to, stdin, out, &waiting)
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
		printMT(out, m, false)
	}
	return seen, nil
}

// showOpenScreen shows the USSD screen that waits for the phone's answer when it
// starts (GET /ussd), if there is one, and notes that it waits.
func showOpenScreen(ctx context.Context, base, msisdn string, out *lockedWriter, waiting *atomic.Bool) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/ussd?msisdn="+url.QueryEscape(msisdn), nil)
	if err != nil {
		return
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	var sc screen
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&sc) != nil || !sc.Open {
		return
	}
	waiting.Store(true)
	printMT(out, mt{From: sc.From, Text: sc.Text, USSD: map[string]string{"ussd_service_op": opUSSRRequest}}, true)
}

// printMTs prints each delivered MT of the stream until it ends, except those
// whose ID is in shown (already printed from the history), and notes whether the
// last USSD screen waits for an answer.
func printMTs(r io.Reader, out *lockedWriter, shown map[string]bool, waiting *atomic.Bool) error {
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
		if m.USSD != nil {
			// Before the screen is printed, so that an answer typed on sight goes to it.
			waiting.Store(m.USSD["ussd_service_op"] == opUSSRRequest)
		}
		printMT(out, m, true)
	}
	return sc.Err()
}

// visible reports whether the phone shows m: an unreachable phone never sees it.
func visible(m mt) bool { return m.Status == "" || m.Status == "DELIVRD" }

// printMT prints an SMS as "< from: text", a USSD screen as "< USSD from: text",
// and, for a live screen that waits for an answer, a line that says so.
func printMT(out *lockedWriter, m mt, live bool) {
	// Continuation lines are indented so a multi-line message reads as one.
	text := strings.ReplaceAll(m.Text, "\n", "\n    ")
	if m.USSD == nil {
		out.printf("< %s: %s\n", m.From, text)
		return
	}
	out.printf("< USSD %s: %s\n", m.From, text)
	if live && m.USSD["ussd_service_op"] == opUSSRRequest {
		out.printf("    (type your answer)\n")
	}
}

// sendLines sends each non-empty stdin line: as the answer to the USSD screen that
// waits for one, as a USSD dial when it is a service code such as *384#, and as an
// SMS to the short code otherwise.
func sendLines(ctx context.Context, base, from, to string, stdin io.Reader, out *lockedWriter, waiting *atomic.Bool) {
	client := &http.Client{Timeout: 10 * time.Second}
	sc := bufio.NewScanner(stdin)
	for sc.Scan() {
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		path, body := "/mo", map[string]string{"from": from, "to": to, "text": text}
		if waiting.Load() || isDial(text) {
			path, body = "/ussd", map[string]string{"from": from, "text": text}
			waiting.Store(false) // until the next screen says otherwise
			out.printf("> USSD: %s\n", text)
		} else {
			out.printf("> %s\n", text) // before sending, so a fast reply prints after it
		}
		code, msg, err := post(ctx, client, base+path, body)
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil:
			out.printf("! not sent: %v\n", err)
		case code == http.StatusConflict && path == "/ussd":
			out.printf("! the USSD screen has ended; type that again to send it as an SMS\n")
		case code != http.StatusAccepted:
			out.printf("! not sent: %d %s %s\n", code, http.StatusText(code), msg)
		}
	}
}

// post sends body as JSON and returns the status and the start of the answer.
func post(ctx context.Context, client *http.Client, url string, body map[string]string) (int, string, error) {
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	return resp.StatusCode, string(bytes.TrimSpace(msg)), nil
}

// isDial reports whether text is a USSD service code such as *384# or *384*2*55501#.
func isDial(text string) bool {
	if len(text) < 3 || text[0] != '*' || text[len(text)-1] != '#' {
		return false
	}
	for _, part := range strings.Split(text[1:len(text)-1], "*") {
		if part == "" || strings.Trim(part, "0123456789") != "" {
			return false
		}
	}
	return true
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
