package api

import (
	"net/http"

	"github.com/payswitch/payswitch/merchant"
)

// keyJSON is a merchant key as the API lists it; Key, the key itself, only in the answer
// that created it.
type keyJSON struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Key       string `json:"key,omitempty"`
	CreatedAt string `json:"created_at"`
	Revoked   bool   `json:"revoked"`
	RevokedAt string `json:"revoked_at,omitempty"`
}

func toKeyJSON(k merchant.Key) keyJSON {
	return keyJSON{ID: k.ID, Name: k.Name, CreatedAt: rfc3339(k.CreatedAt), Revoked: k.Revoked(), RevokedAt: rfc3339(k.RevokedAt)}
}

// createKey issues a key for the merchant (operators only) and shows it this once.
func (s *Server) createKey(w http.ResponseWriter, r *http.Request) error {
	a, err := s.ownMerchant(r)
	if err != nil {
		return err
	}
	var req struct {
		Name string `json:"name"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	k, token, err := s.cfg.Keys.Create(r.Context(), a.ID, req.Name)
	if err != nil {
		return err
	}
	s.cfg.Log.Info().Str("merchant", a.ID).Str("key", k.ID).Str("by", actor(r)).Msg("merchant key created")
	out := toKeyJSON(k)
	out.Key = token
	writeJSON(w, http.StatusCreated, out)
	return nil
}

// listKeys lists the merchant's keys, live and revoked, without the keys themselves.
func (s *Server) listKeys(w http.ResponseWriter, r *http.Request) error {
	a, err := s.ownMerchant(r)
	if err != nil {
		return err
	}
	ks, err := s.cfg.Keys.List(r.Context(), a.ID)
	if err != nil {
		return err
	}
	out := make([]keyJSON, 0, len(ks))
	for _, k := range ks {
		out = append(out, toKeyJSON(k))
	}
	writeJSON(w, http.StatusOK, map[string]any{"keys": out})
	return nil
}

// revokeKey revokes one of the merchant's keys: 401 for it from then on.
func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request) error {
	a, err := s.ownMerchant(r)
	if err != nil {
		return err
	}
	if err := s.cfg.Keys.Revoke(r.Context(), a.ID, r.PathValue("key")); err != nil {
		return err
	}
	s.cfg.Log.Info().Str("merchant", a.ID).Str("key", r.PathValue("key")).Str("by", actor(r)).Msg("merchant key revoked")
	noContent(w)
	return nil
}

// noContent answers 204: done, nothing to show.
func noContent(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}
