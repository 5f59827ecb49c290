package console

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// pageData is what every template gets: the page's own data is in Data.
type pageData struct {
	Title string
	Nav   string // the menu entry to mark as current
	CSRF  string
	Err   string // shown as an error above the page
	Msg   string // shown as a notice above the page
	S     *request
	Phone bool // the demo SMSC is on: the phone is in the menu
	Data  any
}

// pageNames are the templates, each parsed with layout.html.
var pageNames = []string{"login", "error", "overview", "find", "account", "payment", "cash", "audit", "phone"}

// notices are the fixed texts a redirect after a write may show (?done=key): the URL
// never carries text of its own to the page.
var notices = map[string]string{
	"reversed":        "The payment was reversed; both parties were sent an SMS.",
	"frozen":          "The account is frozen: it can neither pay nor be paid until it is reactivated.",
	"reactivated":     "The account is active again.",
	"deposited":       "The deposit was booked.",
	"released":        "The payment was released to the merchant.",
	"escrow_refunded": "The payment was given back to the payer.",
	"refunded":        "The refund was booked; the payer was sent an SMS.",
	"refund_again":    "That reference was used for this refund already: nothing more was moved.",
	"tier":            "The wallet's KYC tier was changed.",
}

func parsePages(loc *time.Location) (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"when": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.In(loc).Format("2006-01-02 15:04:05")
		},
		"clock": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.In(loc).Format("15:04:05")
		},
		// ago is how long before now t was, to a tenth of a second: the overview's ages.
		"ago": func(t, now time.Time) string {
			return strconv.FormatFloat(max(now.Sub(t), 0).Seconds(), 'f', 1, 64) + " s ago"
		},
		"lag":    func(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + " s" },
		"money":  money,
		"bytes":  humanBytes,
		"rate":   func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) },
		"short":  func(s string) string { return shorten(s, 16) },
		"joined": func(ss []string) string { return strings.Join(ss, ", ") },
	}
	for k, f := range businessFuncs {
		funcs[k] = f
	}
	pages := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/partials.html",
			"templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// render writes page name (or, for an htmx request of a fragment, the named block) into
// a buffer first, so that a template error becomes a 500 rather than half a page.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, s *request, d pageData) {
	c.renderBlock(w, status, name, "layout", s, d)
}

func (c *Console) renderBlock(w http.ResponseWriter, status int, name, block string, s *request, d pageData) {
	d.S = s
	d.Phone = c.b.Phone() != nil
	if s != nil && d.CSRF == "" {
		d.CSRF = s.csrf
	}
	var buf bytes.Buffer
	if err := c.pages[name].ExecuteTemplate(&buf, block, d); err != nil {
		c.cfg.Log.Error().Err(err).Str("page", name).Msg("console: template failed")
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// money writes minor units with two decimals and thousands separators: 150050 -> 1,500.50.
func money(minor int64) string {
	neg := minor < 0
	if neg {
		minor = -minor
	}
	whole := strconv.FormatInt(minor/100, 10)
	var b strings.Builder
	for i, ch := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(ch)
	}
	s := fmt.Sprintf("%s.%02d", b.String(), minor%100)
	if neg {
		return "-" + s
	}
	return s
}

// parseMoney reads an amount as an operator types it ("1,500", "1500.5", "1500.50")
// into minor units.
func parseMoney(s string) (int64, error) {
	s = strings.ReplaceAll(strings.TrimSpace(s), ",", "")
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" || len(frac) > 2 || len(whole) > 12 {
		return 0, fmt.Errorf("amount %q: a number with at most two decimals", s)
	}
	for len(frac) < 2 {
		frac += "0"
	}
	n, err := strconv.ParseInt(whole+frac, 10, 64)
	if err != nil || n <= 0 || strings.ContainsAny(whole+frac, "+-") {
		return 0, fmt.Errorf("amount %q: a positive number with at most two decimals", s)
	}
	return n, nil
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
