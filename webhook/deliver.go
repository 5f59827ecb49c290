package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
)

// UserAgent is the User-Agent of every delivery.
const UserAgent = "payswitch-webhook/1"

// deliver makes one attempt at c: a POST of its body, signed with the merchant's secret
// at the time of sending, that must be answered with a 2xx within Config.Timeout (the
// answer's body read too, up to a few kilobytes, so the connection can serve again).
func (h *Hooks) deliver(ctx context.Context, c claimed) attempt {
	a := attempt{at: h.cfg.Now()}
	defer func() { a.duration = h.cfg.Now().Sub(a.at) }()
	secret, err := h.open(c.merchant, c.sealed)
	if err != nil {
		a.errText = err.Error()
		return a
	}
	ctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(c.body))
	if err != nil {
		a.errText = "bad endpoint URL: " + unwrapURLError(err).Error()
		return a
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set(SignatureHeader, Sign(secret, a.at.Unix(), c.body))
	resp, err := h.client.Do(req)
	if err != nil {
		a.errText = h.describe(ctx, err)
		return a
	}
	a.status = resp.StatusCode
	// The status decides; a body that fails or never ends (cut at the timeout) does not.
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		a.errText = "answered " + resp.Status
	}
	return a
}

// describe says why a request failed, without its URL (which may carry a merchant's
// token in its query).
func (h *Hooks) describe(ctx context.Context, err error) string {
	var ne net.Error
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		return fmt.Sprintf("no answer within %v", h.cfg.Timeout)
	}
	return unwrapURLError(err).Error()
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
