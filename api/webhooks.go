package api

import (
	"fmt"
	"net/http"
	"net/url"
	"time"

	payswitch "github.com/payswitch/payswitch/switch"
)

// maxWebhookURL bounds a webhook URL's length.
const maxWebhookURL = 2048

// setWebhook sets where the merchant's events go and the secret that signs them. The
// answer does not repeat the secret.
func (s *Server) setWebhook(w http.ResponseWriter, r *http.Request) error {
	a, err := s.ownMerchant(r)
	if err != nil {
		return err
	}
	var req struct {
		URL    string `json:"url"`
		Secret string `json:"secret"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := checkWebhookURL(req.URL); err != nil {
		return err
	}
	if req.Secret == "" {
		return fmt.Errorf("%w: secret: required; it signs every event", payswitch.ErrInvalid)
	}
	if err := s.cfg.Webhooks.SetEndpoint(r.Context(), a.ID, req.URL, req.Secret); err != nil {
		return err
	}
	s.cfg.Log.Info().Str("merchant", a.ID).Str("by", actor(r)).Msg("webhook endpoint set")
	writeJSON(w, http.StatusOK, map[string]any{"url": req.URL})
	return nil
}

// checkWebhookURL accepts an absolute http or https URL with a host and without
// credentials (those would be kept and shown in clear; the secret is what proves the
// sender). The webhook package judges the rest (which addresses it will call).
func checkWebhookURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		return fmt.Errorf("%w: url: required", payswitch.ErrInvalid)
	case len(raw) > maxWebhookURL:
		return fmt.Errorf("%w: url: at most %d characters", payswitch.ErrInvalid, maxWebhookURL)
	case err != nil, u.Scheme != "http" && u.Scheme != "https", u.Host == "", u.Hostname() == "":
		return fmt.Errorf("%w: url: an http or https URL such as https://shop.example/payswitch", payswitch.ErrInvalid)
	case u.User != nil:
		return fmt.Errorf("%w: url: no user or password in the URL; the secret signs the events", payswitch.ErrInvalid)
	}
	return nil
}

// deliveryJSON is one webhook delivery attempt as the API lists it.
type deliveryJSON struct {
	EventID string `json:"event_id"`
	Type    string `json:"type"`
	State   string `json:"state"`
	Attempt int    `json:"attempt"`
	Status  int    `json:"status,omitempty"`
	Error   string `json:"error,omitempty"`
	At      string `json:"at"`
	NextAt  string `json:"next_at,omitempty"`
}

// webhookDeliveries lists the merchant's recent delivery attempts, newest first
// (?limit=, 1 to 100, 20 by default).
func (s *Server) webhookDeliveries(w http.ResponseWriter, r *http.Request) error {
	a, err := s.ownMerchant(r)
	if err != nil {
		return err
	}
	limit, err := limitParam(r.URL.Query().Get("limit"))
	if err != nil {
		return err
	}
	ds, err := s.cfg.Webhooks.Deliveries(r.Context(), a.ID, limit)
	if err != nil {
		return err
	}
	out := make([]deliveryJSON, 0, len(ds))
	for _, d := range ds {
		out = append(out, deliveryJSON{EventID: d.EventID, Type: d.Type, State: d.State, Attempt: d.Attempt,
			Status: d.Status, Error: d.Error, At: d.At.UTC().Format(time.RFC3339Nano), NextAt: rfc3339(d.NextAt)})
	}
	writeJSON(w, http.StatusOK, map[string]any{"deliveries": out})
	return nil
}
