package console

import (
	"html/template"
	"strconv"
	"strings"
)

// authLabels are the authentication history's events as the payment page names them
// (otp's event names; contract sections 4 and 14). An event not listed is shown as its
// name.
var authLabels = map[string]string{
	"issued":          "code issued",
	"resent":          "code resent",
	"delivered":       "code delivered",
	"delivery_failed": "code not delivered",
	"wrong":           "wrong code",
	"confirmed":       "confirmed",
	"expired":         "code expired",
	"exhausted":       "too many wrong codes",
	"cancelled":       "cancelled",
	"locked":          "wallet locked",
	"lock_refused":    "LOCK refused",
	"unlocked":        "wallet unlocked",
	"blocked":         "refused by the risk rules",
}

func authLabel(event string) string {
	if l, ok := authLabels[event]; ok {
		return l
	}
	return event
}

// changeFields are the account history's fields as the Changes card names them.
var changeFields = map[string]string{"status": "status", "tier": "KYC tier", "id_number": "id number"}

// changeText is one row of an account's history for people: "KYC tier: 1 (basic) →
// 2 (full KYC)", "id number: none → on file" (the history never holds the number).
func changeText(c AccountChange) string {
	field, old, new := c.Field, c.Old, c.New
	if f, ok := changeFields[field]; ok {
		field = f
	}
	if c.Field == "tier" {
		old, new = tierName(old), tierName(new)
	}
	if old == "" {
		old = "—"
	}
	return field + ": " + old + " → " + new
}

// tierName is a tier's number with its name, "2 (full KYC)"; anything else as it is.
func tierName(s string) string {
	if t, err := strconv.Atoi(s); err == nil && t >= 0 && t < len(tierNames) {
		return tierNames[t]
	}
	return s
}

// splitRules is a payment's risk rules, stored comma-separated, one by one.
func splitRules(s string) []string {
	var out []string
	for _, r := range strings.Split(s, ",") {
		if r = strings.TrimSpace(r); r != "" {
			out = append(out, r)
		}
	}
	return out
}

// businessFuncs are the template functions of contract sections 11 and 14's parts of
// the pages.
var businessFuncs = template.FuncMap{
	"authLabel":  authLabel,
	"changeText": changeText,
	"rules":      splitRules,
	"tierNames":  func() []string { return tierNames[:] },
	"minus":      func(a, b int64) int64 { return a - b },
}
