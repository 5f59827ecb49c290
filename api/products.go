package api

import (
	"fmt"
	"net/http"

	"github.com/payswitch/payswitch/merchant"
	payswitch "github.com/payswitch/payswitch/switch"
)

// productJSON is a product of a merchant's catalogue as the API shows it.
type productJSON struct {
	Code      string `json:"code"`
	Name      string `json:"name"`
	Price     int64  `json:"price"`
	CreatedAt string `json:"created_at"`
	Retired   bool   `json:"retired"`
	RetiredAt string `json:"retired_at,omitempty"`
}

func toProductJSON(e merchant.CatalogEntry) productJSON {
	return productJSON{Code: e.Code, Name: e.Name, Price: e.Price, CreatedAt: rfc3339(e.CreatedAt),
		Retired: e.Retired(), RetiredAt: rfc3339(e.RetiredAt)}
}

// addProduct lists a product for the merchant: {"code", "name", "price"}.
func (s *Server) addProduct(w http.ResponseWriter, r *http.Request) error {
	a, err := s.ownMerchant(r)
	if err != nil {
		return err
	}
	var req struct {
		Code  string `json:"code"`
		Name  string `json:"name"`
		Price int64  `json:"price"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	e, err := s.cfg.Catalog.Add(r.Context(), a.ID, payswitch.Product{Code: req.Code, Name: req.Name, Price: req.Price})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, toProductJSON(e))
	return nil
}

// listProducts lists the merchant's products that can be bought, and with
// ?retired=true the retired ones too.
func (s *Server) listProducts(w http.ResponseWriter, r *http.Request) error {
	a, err := s.ownMerchant(r)
	if err != nil {
		return err
	}
	var withRetired bool
	switch v := r.URL.Query().Get("retired"); v {
	case "", "false":
	case "true":
		withRetired = true
	default:
		return fmt.Errorf("%w: retired: true or false", payswitch.ErrInvalid)
	}
	es, err := s.cfg.Catalog.List(r.Context(), a.ID, withRetired)
	if err != nil {
		return err
	}
	out := make([]productJSON, 0, len(es))
	for _, e := range es {
		out = append(out, toProductJSON(e))
	}
	writeJSON(w, http.StatusOK, map[string]any{"products": out})
	return nil
}

// retireProduct retires a product: it can no longer be bought, and its code stays taken
// so that past payments' items keep their meaning.
func (s *Server) retireProduct(w http.ResponseWriter, r *http.Request) error {
	a, err := s.ownMerchant(r)
	if err != nil {
		return err
	}
	if err := s.cfg.Catalog.Retire(r.Context(), a.ID, r.PathValue("code")); err != nil {
		return err
	}
	noContent(w)
	return nil
}
