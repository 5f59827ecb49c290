package console

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/payswitch/payswitch/ledger"
)

// overviewData is the overview's live part, redrawn every few seconds.
type overviewData struct {
	Overview
	Chart     chart
	Channels  []channelCount
	Balanced  bool
	UpdatedAt time.Time
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request, s *request) error {
	d, err := c.overviewData(r)
	if err != nil {
		return err
	}
	c.render(w, r, http.StatusOK, "overview", s, pageData{Title: "Overview", Nav: "overview", Data: d})
	return nil
}

// overviewLive is the overview's live part alone, which the page polls (htmx).
func (c *Console) overviewLive(w http.ResponseWriter, r *http.Request, s *request) error {
	d, err := c.overviewData(r)
	if err != nil {
		return err
	}
	c.renderBlock(w, http.StatusOK, "overview", "live", s, pageData{Data: d})
	return nil
}

func (c *Console) overviewData(r *http.Request) (overviewData, error) {
	now := c.cfg.Now()
	ov, err := c.b.Overview(r.Context())
	if err != nil {
		return overviewData{}, fmt.Errorf("overview: %w", err)
	}
	since := now.Truncate(time.Minute).Add(-59 * time.Minute)
	rows, err := c.b.Activity(r.Context(), since)
	if err != nil {
		return overviewData{}, fmt.Errorf("overview: activity: %w", err)
	}
	c.linkRates(ov.Links, now)
	d := overviewData{Overview: ov, Chart: buildChart(rows, since, c.cfg.Location), Channels: byChannel(rows),
		Balanced: true, UpdatedAt: now}
	for _, t := range ov.Trial {
		d.Balanced = d.Balanced && t.Debits == t.Credits
	}
	return d, nil
}

// linkRates sets each link's submit rate from its counter's growth since the last look.
func (c *Console) linkRates(links []Link, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range links {
		l := &links[i]
		key := l.Name
		if l.Server {
			key = "server:" + key
		}
		if prev, ok := c.rates[key]; ok && now.Sub(prev.at) > 0 && l.Submitted >= prev.submitted {
			l.SubmitRate = float64(l.Submitted-prev.submitted) / now.Sub(prev.at).Seconds()
		}
		c.rates[key] = linkSample{at: now, submitted: l.Submitted}
	}
	if len(c.rates) > 1000 { // links are configured, but bound the map anyway
		clear(c.rates)
	}
}

// find takes one box: a payment ID, a merchant code, a phone number or a name.
func (c *Console) find(w http.ResponseWriter, r *http.Request, s *request) error {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	if q == "" {
		http.Redirect(w, r, "/console/", http.StatusSeeOther)
		return nil
	}
	if utf8.RuneCountInString(q) > 60 {
		return badRequest("search for at most 60 characters")
	}
	f, err := c.b.Find(r.Context(), q)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	switch {
	case f.Payment != "":
		http.Redirect(w, r, "/console/payments/"+url.PathEscape(f.Payment), http.StatusSeeOther)
		return nil
	case f.Account != "":
		http.Redirect(w, r, "/console/accounts/"+url.PathEscape(f.Account), http.StatusSeeOther)
		return nil
	}
	c.render(w, r, http.StatusOK, "find", s, pageData{Title: "Find", Data: struct {
		Q        string
		Accounts []ledger.Account
	}{q, f.Accounts}})
	return nil
}

// pageSize is how many payments or entries an account page shows at once.
const pageSize = 25

type accountData struct {
	Account    ledger.Account
	Payments   []Payment
	Next       string // cursor of the next page of payments; "" on the last
	Entries    []ledger.Entry
	NextSeq    int64        // seq of the next page of entries; 0 on the last
	Stores     []StoreSales // a merchant's stores and today's sales
	Changeable bool         // a customer account that is not closed: it may be frozen or reactivated
	Changes    []AccountChange
	Tier       string // a wallet's KYC tier, for people; "" for none (tiers.go)
	TierLevel  int    // the tier itself; -1 for none
}

func (c *Console) account(w http.ResponseWriter, r *http.Request, s *request) error {
	return c.showAccount(w, r, s, http.StatusOK, "")
}

func (c *Console) showAccount(w http.ResponseWriter, r *http.Request, s *request, status int, errMsg string) error {
	a, err := c.b.Account(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	d := accountData{Account: a, Changeable: !a.Type.IsSystem() && a.Status != ledger.Closed}
	q := r.URL.Query()
	if d.Payments, d.Next, err = c.b.AccountPayments(r.Context(), a, q.Get("before"), pageSize); err != nil {
		return fmt.Errorf("account %s: payments: %w", a.ID, err)
	}
	before, _ := strconv.ParseInt(q.Get("entries_before"), 10, 64)
	if d.Entries, err = c.b.AccountEntries(r.Context(), a.ID, before, pageSize+1); err != nil {
		return fmt.Errorf("account %s: entries: %w", a.ID, err)
	}
	if a.Type == ledger.Merchant {
		if d.Stores, err = c.b.StoreSales(r.Context(), a.ID, c.cfg.Now()); err != nil {
			return fmt.Errorf("account %s: stores: %w", a.ID, err)
		}
	}
	if d.Changes, err = c.b.AccountChanges(r.Context(), a.ID, pageSize); err != nil {
		return fmt.Errorf("account %s: changes: %w", a.ID, err)
	}
	if d.Tier, d.TierLevel, err = c.tierLabel(r.Context(), a); err != nil {
		return fmt.Errorf("account %s: tier: %w", a.ID, err)
	}
	if len(d.Entries) > pageSize {
		d.Entries = d.Entries[:pageSize]
		d.NextSeq = d.Entries[pageSize-1].Seq
	}
	c.render(w, r, status, "account", s, pageData{Title: "Account " + a.ID, Err: errMsg, Msg: notices[q.Get("done")], Data: d})
	return nil
}

// accountStatus freezes or reactivates an account; the switch records the reason and
// the signed-in token's name with the change, in the same write.
func (c *Console) accountStatus(w http.ResponseWriter, r *http.Request, s *request) error {
	id := r.PathValue("id")
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	var st ledger.Status
	var done string
	switch r.PostFormValue("status") {
	case "frozen":
		st, done = ledger.Frozen, "frozen"
	case "active":
		st, done = ledger.Active, "reactivated"
	default:
		return badRequest("status: frozen or active")
	}
	if reason == "" || utf8.RuneCountInString(reason) > 200 {
		return c.showAccount(w, r, s, http.StatusBadRequest, "Give a reason (1 to 200 characters).")
	}
	if err := c.b.SetAccountStatus(r.Context(), id, st, reason, s.name); err != nil {
		if errors.Is(err, ErrRefused) {
			return c.showAccount(w, r, s, http.StatusUnprocessableEntity, "Not changed: "+why(err))
		}
		return err
	}
	http.Redirect(w, r, "/console/accounts/"+url.PathEscape(id)+"?done="+done, http.StatusSeeOther)
	return nil
}

func (c *Console) payment(w http.ResponseWriter, r *http.Request, s *request) error {
	return c.showPayment(w, r, s, http.StatusOK, "")
}

func (c *Console) showPayment(w http.ResponseWriter, r *http.Request, s *request, status int, errMsg string) error {
	p, err := c.b.Payment(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	c.render(w, r, status, "payment", s, pageData{Title: "Payment " + p.ID, Err: errMsg,
		Msg: notices[r.URL.Query().Get("done")], Data: p})
	return nil
}

func (c *Console) reverse(w http.ResponseWriter, r *http.Request, s *request) error {
	id := r.PathValue("id")
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	ref := strings.TrimSpace(r.PostFormValue("reference"))
	if reason == "" || ref == "" {
		return c.showPayment(w, r, s, http.StatusBadRequest, "A reversal needs a reason and a reference.")
	}
	if err := c.b.Reverse(r.Context(), id, reason, ref); err != nil {
		if errors.Is(err, ErrRefused) || errors.Is(err, ErrNotFound) {
			return c.showPayment(w, r, s, http.StatusUnprocessableEntity, "Not reversed: "+why(err))
		}
		return err
	}
	c.cfg.Log.Info().Str("token", s.name).Str("payment", id).Str("reference", ref).Msg("console: payment reversed")
	http.Redirect(w, r, "/console/payments/"+url.PathEscape(id)+"?done=reversed", http.StatusSeeOther)
	return nil
}

type cashData struct {
	Account, Amount, Reference string
	Currency                   string
}

func (c *Console) cash(w http.ResponseWriter, r *http.Request, s *request) error {
	c.render(w, r, http.StatusOK, "cash", s, pageData{Title: "Cash in", Nav: "cash",
		Data: cashData{Account: r.URL.Query().Get("account"), Currency: c.b.Currency()}})
	return nil
}

// deposit books cash brought in, through the engine's Deposit; the reference makes a
// second click harmless.
func (c *Console) deposit(w http.ResponseWriter, r *http.Request, s *request) error {
	d := cashData{Account: strings.TrimSpace(r.PostFormValue("account")), Amount: r.PostFormValue("amount"),
		Reference: strings.TrimSpace(r.PostFormValue("reference")), Currency: c.b.Currency()}
	fail := func(status int, msg string) error {
		c.render(w, r, status, "cash", s, pageData{Title: "Cash in", Nav: "cash", Err: msg, Data: d})
		return nil
	}
	amount, err := parseMoney(d.Amount)
	if err != nil {
		return fail(http.StatusBadRequest, "Not booked: "+err.Error())
	}
	if d.Account == "" || d.Reference == "" {
		return fail(http.StatusBadRequest, "Not booked: give the account and a reference.")
	}
	id, err := c.b.Deposit(r.Context(), d.Account, amount, d.Reference)
	if errors.Is(err, ErrRefused) || errors.Is(err, ErrNotFound) {
		return fail(http.StatusUnprocessableEntity, "Not booked: "+why(err))
	}
	if err != nil {
		return err
	}
	c.cfg.Log.Info().Str("token", s.name).Str("payment", id).Str("reference", d.Reference).Msg("console: deposit booked")
	http.Redirect(w, r, "/console/payments/"+url.PathEscape(id)+"?done=deposited", http.StatusSeeOther)
	return nil
}

// settlementRunsShown is how many settled days the audit page lists: a month of them.
const settlementRunsShown = 30

func (c *Console) audit(w http.ResponseWriter, r *http.Request, s *request) error {
	ov, err := c.b.Overview(r.Context())
	if err != nil {
		return err
	}
	balanced := true
	for _, t := range ov.Trial {
		balanced = balanced && t.Debits == t.Credits
	}
	runs, err := c.b.SettlementRuns(r.Context(), settlementRunsShown)
	if err != nil {
		return fmt.Errorf("audit: settlement runs: %w", err)
	}
	c.render(w, r, http.StatusOK, "audit", s, pageData{Title: "Audit", Nav: "audit", Data: struct {
		Overview
		Balanced bool
		Runs     []SettlementRun
	}{ov, balanced, runs}})
	return nil
}

// export runs the auditor export and sends its files as one zip. It changes nothing,
// so an auditor may run it; it is a POST (with the CSRF token) because it costs a read
// of the whole journal, which a link followed by accident should not start. The files
// are written to a private temporary folder first, so that a failed export is an error
// page, not a broken download.
func (c *Console) export(w http.ResponseWriter, r *http.Request, s *request) error {
	if !c.exporting.CompareAndSwap(false, true) {
		return httpError{http.StatusTooManyRequests, "an export is already running; try again when it has finished"}
	}
	defer c.exporting.Store(false)
	dir, err := os.MkdirTemp("", "payswitch-console-export-")
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "export")
	if err := c.b.Export(r.Context(), out); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	files, err := os.ReadDir(out)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	name := "payswitch-export-" + c.cfg.Now().UTC().Format("20060102T150405Z")
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.zip"`)
	zw := zip.NewWriter(w)
	for _, f := range files {
		if err := addToZip(zw, filepath.Join(out, f.Name()), name+"/"+f.Name()); err != nil {
			c.cfg.Log.Error().Err(err).Msg("console: export zip") // the download breaks
			return nil
		}
	}
	if err := zw.Close(); err != nil {
		c.cfg.Log.Error().Err(err).Msg("console: export zip")
	}
	c.cfg.Log.Info().Str("token", s.name).Int("files", len(files)).Msg("console: export downloaded")
	return nil
}

func addToZip(zw *zip.Writer, path, name string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	zf, err := zw.Create(name)
	if err != nil {
		return err
	}
	_, err = io.Copy(zf, f)
	return err
}
