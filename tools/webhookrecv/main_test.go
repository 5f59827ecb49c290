package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payswitch/payswitch/store"
	"github.com/payswitch/payswitch/webhook"
)

const secret = "whsec-merchant-a-0123456789"

var sent = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

const completed = `{"id":"evt_0p8sl3w2c4k1m9x7q5zr","type":"payment.completed","created_at":"2026-03-01T10:00:00Z",` +
	`"data":{"id":"PAY7K2M9QX4","type":"merchant_payment","state":"completed","amount":15000,"currency":"KES"}}`

// buffer is an output the test reads while handlers write.
type buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func post(t *testing.T, url, body, signature string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if signature != "" {
		req.Header.Set(webhook.SignatureHeader, signature)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestReceiverChecksSignaturesAndPrintsEachEventOnce(t *testing.T) {
	out := &buffer{}
	now := sent.Add(30 * time.Second)
	srv := httptest.NewServer(newReceiver([]byte(secret), webhook.DefaultTolerance, func() time.Time { return now },
		&lockedWriter{w: out}))
	t.Cleanup(srv.Close)
	good := webhook.Sign([]byte(secret), sent.Unix(), []byte(completed))

	if code, _ := post(t, srv.URL, completed, good); code != http.StatusOK {
		t.Fatalf("good event: %d", code)
	}
	want := "evt_0p8sl3w2c4k1m9x7q5zr payment.completed PAY7K2M9QX4 KES 150.00 completed\n"
	if got := out.String(); got != want {
		t.Fatalf("printed %q, want %q", got, want)
	}
	// The switch sends it again (it did not see the first answer): 200, not processed twice.
	if code, _ := post(t, srv.URL, completed, good); code != http.StatusOK {
		t.Fatalf("duplicate: %d", code)
	}
	if got := out.String(); got != want+strings.TrimSuffix(want, "\n")+" (duplicate: already processed)\n" {
		t.Fatalf("printed %q", got)
	}

	for _, tc := range []struct{ name, body, signature string }{
		{"no signature", completed, ""},
		{"tampered amount", strings.Replace(completed, "15000", "1500000", 1), good},
		{"another secret", completed, webhook.Sign([]byte("someone-else-0123456789"), sent.Unix(), []byte(completed))},
		{"replayed later", completed, webhook.Sign([]byte(secret), sent.Add(-10*time.Minute).Unix(), []byte(completed))},
		{"malformed", completed, "v1=abc"},
	} {
		before := out.String()
		code, body := post(t, srv.URL, tc.body, tc.signature)
		var e struct {
			Error struct{ Code, Message string }
		}
		if code != http.StatusBadRequest || json.Unmarshal([]byte(body), &e) != nil || e.Error.Code != "bad_signature" {
			t.Errorf("%s: %d %s", tc.name, code, body)
		}
		if printed := strings.TrimPrefix(out.String(), before); !strings.HasPrefix(printed, "rejected from ") {
			t.Errorf("%s: printed %q", tc.name, printed)
		}
	}
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %d", resp.StatusCode)
	}
}

func TestRunNeedsASecret(t *testing.T) {
	err := run(context.Background(), []string{"-listen", "127.0.0.1:0"}, func(string) string { return "" }, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "WEBHOOK_SECRET") {
		t.Fatalf("run without a secret: %v", err)
	}
}

// The switch's own delivery reaches the receiver, which checks it and prints it: what
// the README shows a merchant.
func TestReceivesWhatTheSwitchSends(t *testing.T) {
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() {
		ran <- run(ctx, []string{"-listen", "127.0.0.1:0"}, func(k string) string {
			return map[string]string{"WEBHOOK_SECRET": secret}[k]
		}, pw)
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	next := func() string {
		t.Helper()
		got := make(chan string, 1)
		go func() {
			if lines.Scan() {
				got <- lines.Text()
			}
			close(got)
		}()
		select {
		case l := <-got:
			return l
		case <-time.After(10 * time.Second):
			t.Fatal("webhookrecv printed nothing")
			return ""
		}
	}
	first := next()
	addr, ok := strings.CutPrefix(first, "webhookrecv: listening on ")
	if !ok {
		t.Fatalf("first line %q", first)
	}

	db, err := store.Open(filepath.Join(t.TempDir(), "switch.db"), store.Options{}, webhook.Schema)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	hooks, err := webhook.New(db, webhook.Config{SealKey: []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	if err := hooks.SetEndpoint(ctx, "M1", addr, secret); err != nil {
		t.Fatal(err)
	}
	payment := `{"id":"PAY7K2M9QX4","type":"merchant_payment","state":"completed","amount":150000,"currency":"KES"}`
	if err := db.Write(ctx, func(tx store.Tx) error {
		return hooks.Enqueue(ctx, tx, "M1", webhook.PaymentCompleted, "PAY7K2M9QX4", []byte(payment), time.Time{})
	}); err != nil {
		t.Fatal(err)
	}
	hooksCtx, stopHooks := context.WithCancel(ctx)
	hooksDone := make(chan error, 1)
	go func() { hooksDone <- hooks.Run(hooksCtx) }()
	defer func() { stopHooks(); <-hooksDone }()

	line := next()
	if f := strings.Fields(line); len(f) != 6 || !strings.HasPrefix(f[0], "evt_") ||
		strings.Join(f[1:], " ") != "payment.completed PAY7K2M9QX4 KES 1,500.00 completed" {
		t.Fatalf("printed %q", line)
	}
	cancel()
	go io.Copy(io.Discard, pr)
	if err := <-ran; err != nil {
		t.Fatalf("run: %v", err)
	}
}
