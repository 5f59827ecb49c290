// Package simswap asks a carrier whether a number's SIM card changed recently, the check
// that catches the most common takeover of SMS-code payments: a fraudster has the
// victim's number moved to a new SIM and receives the codes.
//
// The API is the CAMARA SIM Swap "check" operation: POST <url> with
// {"phoneNumber": "+254700000001", "maxAge": 72} (hours) and a bearer token, answered
// {"swapped": true|false}.
package simswap

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// ErrUnavailable means the check could not be made; the caller's policy decides.
var ErrUnavailable = errors.New("simswap: check unavailable")

// Client asks one carrier's SIM-swap API.
type Client struct {
	URL     string
	Token   string
	MaxAge  time.Duration // a swap more recent than this counts
	Timeout time.Duration
	HTTP    *http.Client // nil: a client with Timeout
}

// Swapped reports whether msisdn's SIM changed within MaxAge.
func (c *Client) Swapped(ctx context.Context, msisdn string) (bool, error) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 3 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hours := int((c.MaxAge + time.Hour - 1) / time.Hour)
	if hours < 1 {
		hours = 1
	}
	body, _ := json.Marshal(map[string]any{"phoneNumber": "+" + msisdn, "maxAge": hours})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: timeout}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return false, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return false, fmt.Errorf("%w: status %d", ErrUnavailable, resp.StatusCode)
	}
	var out struct {
		Swapped *bool `json:"swapped"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&out); err != nil || out.Swapped == nil {
		return false, fmt.Errorf("%w: answer without \"swapped\"", ErrUnavailable)
	}
	return *out.Swapped, nil
}
