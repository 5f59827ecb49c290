// Package merchant keeps what a merchant has beside its account in the ledger: the API
// keys its systems sign in with and its catalogue of products (contract section 10).
// It owns its tables (Schema) and knows merchants only by their account ID: whether an
// ID is a merchant's account is the ledger's to say, and the API asks it first.
package merchant

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Errors returned by Keys and Catalog, each wrapped with the detail of the case.
var (
	// ErrInvalid: a name, code or price that is not allowed; nothing was changed.
	ErrInvalid = errors.New("merchant: invalid request")
	// ErrNotFound: the merchant has no key with that ID, or no product with that code.
	ErrNotFound = errors.New("merchant: not found")
	// ErrTaken: the merchant already has a product with that code (a retired one too).
	ErrTaken = errors.New("merchant: already taken")
	// ErrLimit: the merchant has as many keys or products as it may.
	ErrLimit = errors.New("merchant: limit reached")
	// ErrBadKey: the presented key is not a merchant key, or was revoked.
	ErrBadKey = errors.New("merchant: unknown or revoked key")
)

// Limits of what a merchant may have. Every row here is made through the API, so each
// table has a cap per merchant.
const (
	// DefaultMaxKeys is how many live keys a merchant may have at once.
	DefaultMaxKeys = 20
	// keptRevokedKeys is how many revoked keys of a merchant stay listed; older ones are
	// deleted when another is revoked, so that rotating keys never fills the table.
	keptRevokedKeys = 100
	// DefaultMaxProducts is how many products, retired ones included, a merchant may have.
	DefaultMaxProducts = 10_000
	// DefaultMaxPrice is the highest price of a product: the engine's own bound on an
	// amount, which keeps price × quantity sums far from int64 overflow.
	DefaultMaxPrice = 1_000_000_000_000_00
	// maxNameRunes bounds key and product names.
	maxNameRunes = 64
)

// Options shape Keys and Catalog; the zero value is sensible.
type Options struct {
	Now         func() time.Time // nil: time.Now
	MaxKeys     int              // live keys per merchant; 0: DefaultMaxKeys
	MaxProducts int              // products per merchant, retired included; 0: DefaultMaxProducts
	// MaxPrice is the highest price of a product (minor units); 0: DefaultMaxPrice. A
	// switch sets its engine's highest amount, so that a product a customer cannot pay
	// for even once cannot be listed.
	MaxPrice int64
	// MaxStores is how many stores, closed ones included, a merchant may have; 0:
	// DefaultMaxStores.
	MaxStores int
}

func (o Options) withDefaults() Options {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxKeys <= 0 {
		o.MaxKeys = DefaultMaxKeys
	}
	if o.MaxProducts <= 0 {
		o.MaxProducts = DefaultMaxProducts
	}
	if o.MaxStores <= 0 {
		o.MaxStores = DefaultMaxStores
	}
	if o.MaxPrice <= 0 {
		o.MaxPrice = DefaultMaxPrice
	}
	return o
}

// cleanName trims name and checks that it is 1 to 64 printable characters. Markup is
// allowed: a name is text, and whoever shows it escapes it (JSON, HTML, SMS).
func cleanName(what, name string) (string, error) {
	n := strings.TrimSpace(name)
	if n == "" || !utf8.ValidString(n) || utf8.RuneCountInString(n) > maxNameRunes ||
		strings.ContainsFunc(n, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return "", fmt.Errorf("%w: %s: 1 to %d printable characters", ErrInvalid, what, maxNameRunes)
	}
	return n, nil
}

// micros is t as the tables keep times: Unix microseconds.
func micros(t time.Time) int64 { return t.UnixMicro() }

// fromMicros is a stored time; 0 (or NULL read as 0) is the zero time.
func fromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}
