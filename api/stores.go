package api

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/payswitch/payswitch/internal/csvcell"
	"github.com/payswitch/payswitch/merchant"
	"github.com/payswitch/payswitch/sales"
	payswitch "github.com/payswitch/payswitch/switch"
)

// Stores is what the store routes need of package merchant (*merchant.Stores).
type Stores interface {
	Create(ctx context.Context, merchantID, name, till, msisdn string) (merchant.Store, error)
	List(ctx context.Context, merchantID string) ([]merchant.Store, error)
	Get(ctx context.Context, merchantID, id string) (merchant.Store, error)
	SetStatus(ctx context.Context, merchantID, id, status string) (merchant.Store, error)
}

// SalesReports is what the sales route needs (*sales.Reports).
type SalesReports interface {
	Report(ctx context.Context, q sales.Query) ([]sales.Row, error)
}

var (
	_ Stores       = (*merchant.Stores)(nil)
	_ SalesReports = (*sales.Reports)(nil)
)

// mountStoreRoutes mounts contract section 11's stores and sales. A merchant's key
// manages its own stores and reads its own sales, as it does its products; another
// merchant's answer 404.
func (s *Server) mountStoreRoutes() {
	st, sa := s.cfg.Stores != nil, s.cfg.Sales != nil
	s.merchantRoute("POST /api/v1/merchants/{id}/stores", Operator, configured(st, "stores", s.createStore))
	s.merchantRoute("GET /api/v1/merchants/{id}/stores", Auditor, configured(st, "stores", s.listStores))
	s.merchantRoute("PATCH /api/v1/merchants/{id}/stores/{store}", Operator, configured(st, "stores", s.setStoreStatus))
	s.merchantRoute("GET /api/v1/merchants/{id}/sales", Auditor, configured(sa && st, "sales reports", s.salesReport))
}

// tillTaken reports whether err is a till or merchant code that another store or
// merchant has (409 till_taken): the store's own check, or the database's triggers when
// a merchant's code is written (package merchant's schema).
func tillTaken(err error) bool {
	return errors.Is(err, merchant.ErrTillTaken) || strings.Contains(err.Error(), "till_taken")
}

// storeJSON is a store as the API shows it.
type storeJSON struct {
	ID        string `json:"id"`
	Merchant  string `json:"merchant"`
	Name      string `json:"name"`
	Till      string `json:"till"`
	MSISDN    string `json:"msisdn,omitempty"`
	Status    string `json:"status"`
	CreatedAt string `json:"created_at"`
	UpdatedAt string `json:"updated_at"`
}

func toStoreJSON(st merchant.Store) storeJSON {
	return storeJSON{ID: st.ID, Merchant: st.Merchant, Name: st.Name, Till: st.Till, MSISDN: st.MSISDN,
		Status: st.Status, CreatedAt: rfc3339(st.CreatedAt), UpdatedAt: rfc3339(st.UpdatedAt)}
}

// createStore opens a store: {"name", "till", "msisdn"} (msisdn optional).
func (s *Server) createStore(w http.ResponseWriter, r *http.Request) error {
	a, err := s.ownMerchant(r)
	if err != nil {
		return err
	}
	var req struct {
		Name   string `json:"name"`
		Till   string `json:"till"`
		MSISDN string `json:"msisdn"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	st, err := s.cfg.Stores.Create(r.Context(), a.ID, req.Name, req.Till, req.MSISDN)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, toStoreJSON(st))
	return nil
}

// listStores lists the merchant's stores, closed ones too, oldest first.
func (s *Server) listStores(w http.ResponseWriter, r *http.Request) error {
	a, err := s.ownMerchant(r)
	if err != nil {
		return err
	}
	sts, err := s.cfg.Stores.List(r.Context(), a.ID)
	if err != nil {
		return err
	}
	out := make([]storeJSON, 0, len(sts))
	for _, st := range sts {
		out = append(out, toStoreJSON(st))
	}
	writeJSON(w, http.StatusOK, map[string]any{"stores": out})
	return nil
}

// setStoreStatus closes or reopens a store: {"status": "closed" | "open"}.
func (s *Server) setStoreStatus(w http.ResponseWriter, r *http.Request) error {
	a, err := s.ownMerchant(r)
	if err != nil {
		return err
	}
	var req struct {
		Status string `json:"status"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	st, err := s.cfg.Stores.SetStatus(r.Context(), a.ID, r.PathValue("store"), req.Status)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toStoreJSON(st))
	return nil
}

// salesRowJSON is one period of one store. Period is its start in the business time
// zone (RFC 3339 with the zone's offset); amounts are minor units.
type salesRowJSON struct {
	Period        string `json:"period"`
	Store         string `json:"store"`
	Payments      int64  `json:"payments"`
	Gross         int64  `json:"gross"`
	Refunds       int64  `json:"refunds"`
	Net           int64  `json:"net"`
	AverageTicket int64  `json:"average_ticket"`
}

// salesReport answers ?from=&to=&by=hour|day[&store=], as JSON or, with Accept:
// text/csv, as CSV with the same columns.
func (s *Server) salesReport(w http.ResponseWriter, r *http.Request) error {
	a, err := s.ownMerchant(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	sq := sales.Query{Merchant: a.ID, By: q.Get("by"), Store: q.Get("store")}
	for _, t := range []struct {
		name string
		into *time.Time
	}{{"from", &sq.From}, {"to", &sq.To}} {
		if *t.into, err = time.Parse(time.RFC3339, q.Get(t.name)); err != nil {
			return fmt.Errorf("%w: %s: a time such as 2026-12-01T00:00:00Z (RFC 3339)", payswitch.ErrInvalid, t.name)
		}
	}
	if err := sq.Check(); err != nil {
		return err
	}
	if sq.Store != "" && sq.Store != sales.MainStore {
		if _, err := s.cfg.Stores.Get(r.Context(), a.ID, sq.Store); err != nil {
			return err
		}
	}
	rows, err := s.cfg.Sales.Report(r.Context(), sq)
	if err != nil {
		return err
	}
	out := make([]salesRowJSON, 0, len(rows))
	for _, row := range rows {
		out = append(out, salesRowJSON{Period: row.Period.Format(time.RFC3339), Store: row.Store,
			Payments: row.Payments, Gross: row.Gross, Refunds: row.Refunds, Net: row.Net, AverageTicket: row.AverageTicket})
	}
	if !strings.Contains(r.Header.Get("Accept"), "text/csv") {
		writeJSON(w, http.StatusOK, map[string]any{"rows": out})
		return nil
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	cw := csv.NewWriter(w)
	cw.Write([]string{"period", "store", "payments", "gross", "refunds", "net", "average_ticket"})
	i := func(n int64) string { return strconv.FormatInt(n, 10) }
	for _, row := range out {
		cw.Write([]string{csvcell.Text(row.Period), csvcell.Text(row.Store), i(row.Payments), i(row.Gross),
			i(row.Refunds), i(row.Net), i(row.AverageTicket)})
	}
	cw.Flush()
	return nil
}
