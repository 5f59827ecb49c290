package config

import (
	"net/url"
	"strings"
)

// validateDatabase checks that exactly one of database.path (SQLite) and database.url
// (PostgreSQL) is set, and that what only one of them can do is not asked of the other.
func (c *Config) validateDatabase(k *checker) {
	d := c.Database
	switch {
	case d.Path == "" && d.URL == "":
		k.add("database.path", "required (or database.url for PostgreSQL)")
	case d.Path != "" && d.URL != "":
		k.add("database.url", "set only one of database.path (SQLite) and database.url (PostgreSQL)")
	case d.URL != "":
		if !strings.HasPrefix(d.URL, "postgres://") && !strings.HasPrefix(d.URL, "postgresql://") {
			k.add("database.url", "%q: must be a postgres:// or postgresql:// URL", RedactURL(d.URL))
		} else if _, err := url.Parse(d.URL); err != nil {
			k.add("database.url", "%q: not a URL", RedactURL(d.URL))
		}
		if len(d.Replicas) > 0 {
			k.add("database.replicas", "only with database.path: on PostgreSQL, replicate with a standby (README, \"Running on PostgreSQL\")")
		}
	}
}

// Postgres reports whether the switch runs on PostgreSQL (database.url).
func (d Database) Postgres() bool { return d.URL != "" }

// Where names the database for logs and messages: the SQLite file, or the PostgreSQL
// URL without its password.
func (d Database) Where() string {
	if d.URL != "" {
		return RedactURL(d.URL)
	}
	return d.Path
}

// RedactURL is u with any password replaced by "xxxxx", for logs and error messages; a
// string that does not parse is cut to its scheme.
func RedactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		if i := strings.Index(u, "://"); i >= 0 {
			return u[:i+3] + "..."
		}
		return "..."
	}
	q := p.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		p.RawQuery = q.Encode()
	}
	return p.Redacted()
}

// SpoolsReceipts reports whether delivery receipts go through the receipt spool: on
// SQLite, unless receipt_spool is off.
func (d Database) SpoolsReceipts() bool { return !d.Postgres() && d.ReceiptSpool != ReceiptSpoolOff }

// SpoolsMOs reports whether MOs go through the spool: on SQLite, unless mo_spool is off.
func (d Database) SpoolsMOs() bool { return !d.Postgres() && d.MOSpool != ReceiptSpoolOff }

// ReceiptSpoolPath is the spool's folder, beside the database: it keeps the receipts
// and the MOs (its name is from when it kept only receipts).
func (d Database) ReceiptSpoolPath() string { return d.Path + ".receipts" }
