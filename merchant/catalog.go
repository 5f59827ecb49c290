package merchant

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/payswitch/payswitch/store"
	payswitch "github.com/payswitch/payswitch/switch"
)

// Catalog keeps merchants' products: what a request to pay or a BUY by SMS names by
// code. It is safe for concurrent use: writes go through the store's one writer.
type Catalog struct {
	db   *store.DB
	opts Options
}

var _ payswitch.ProductCatalog = (*Catalog)(nil)

// NewCatalog returns the catalogue kept in db.
func NewCatalog(db *store.DB, opts Options) *Catalog {
	return &Catalog{db: db, opts: opts.withDefaults()}
}

// CatalogEntry is a product as its merchant lists it.
type CatalogEntry struct {
	Code      string
	Name      string
	Price     int64 // minor units
	CreatedAt time.Time
	RetiredAt time.Time // zero while it can be bought
}

// Retired reports whether the product can no longer be bought.
func (e CatalogEntry) Retired() bool { return !e.RetiredAt.IsZero() }

// ValidProductCode reports whether code is 1 to 6 digits, as a customer types it after
// BUY and the merchant's code. Codes are kept as typed: "012" and "12" are two products.
func ValidProductCode(code string) bool {
	if len(code) < 1 || len(code) > 6 {
		return false
	}
	for i := range len(code) {
		if code[i] < '0' || code[i] > '9' {
			return false
		}
	}
	return true
}

// Add lists p for merchantID. A code the merchant has used, retired or not, is ErrTaken;
// a bad code, name or price ErrInvalid; a merchant with MaxProducts products ErrLimit.
func (c *Catalog) Add(ctx context.Context, merchantID string, p payswitch.Product) (CatalogEntry, error) {
	if merchantID == "" {
		return CatalogEntry{}, fmt.Errorf("%w: no merchant", ErrInvalid)
	}
	if !ValidProductCode(p.Code) {
		return CatalogEntry{}, fmt.Errorf("%w: code: 1 to 6 digits", ErrInvalid)
	}
	name, err := cleanName("name", p.Name)
	if err != nil {
		return CatalogEntry{}, err
	}
	if p.Price <= 0 || p.Price > c.opts.MaxPrice {
		return CatalogEntry{}, fmt.Errorf("%w: price: a whole number of minor units from 1 to %d", ErrInvalid, c.opts.MaxPrice)
	}
	e := CatalogEntry{Code: p.Code, Name: name, Price: p.Price, CreatedAt: c.opts.Now().UTC()}
	err = c.db.Write(ctx, func(tx store.Tx) error {
		if err := lockMerchant(ctx, c.db, tx, "products", merchantID); err != nil {
			return err
		}
		var n int
		var retired sql.NullInt64
		// One statement reads both the merchant's count and whether the code is used.
		if err := tx.QueryRowContext(ctx, `SELECT count(*),
				(SELECT COALESCE(retired_at, 0) FROM products WHERE merchant_id = ?1 AND code = ?2)
			FROM products WHERE merchant_id = ?1`, merchantID, p.Code).Scan(&n, &retired); err != nil {
			return fmt.Errorf("merchant: read products: %w", err)
		}
		switch {
		case retired.Valid && retired.Int64 != 0:
			return fmt.Errorf("%w: code %s was used by a retired product; retired codes stay taken", ErrTaken, p.Code)
		case retired.Valid:
			return fmt.Errorf("%w: code %s is another product's", ErrTaken, p.Code)
		case n >= c.opts.MaxProducts:
			return fmt.Errorf("%w: a merchant may have %d products, retired ones included", ErrLimit, c.opts.MaxProducts)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO products (merchant_id, code, name, price, created_at)
			VALUES (?, ?, ?, ?, ?)`, merchantID, p.Code, name, p.Price, micros(e.CreatedAt))
		if err != nil {
			return fmt.Errorf("merchant: insert product: %w", err)
		}
		return nil
	})
	if err != nil {
		return CatalogEntry{}, err
	}
	return e, nil
}

// Retire stops merchantID's product code from being bought; its code stays taken.
// Retiring a retired product changes nothing; an unknown code is ErrNotFound.
func (c *Catalog) Retire(ctx context.Context, merchantID, code string) error {
	return c.db.Write(ctx, func(tx store.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE products SET retired_at = COALESCE(retired_at, ?)
			WHERE merchant_id = ? AND code = ?`, micros(c.opts.Now()), merchantID, code)
		if err != nil {
			return fmt.Errorf("merchant: retire product: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: no product with code %s", ErrNotFound, code)
		}
		return nil
	})
}

// List returns merchantID's products in the order of their codes as numbers (shorter
// codes first), only those that can be bought unless withRetired.
func (c *Catalog) List(ctx context.Context, merchantID string, withRetired bool) ([]CatalogEntry, error) {
	rows, err := c.db.Reader().QueryContext(ctx, `SELECT code, name, price, created_at, COALESCE(retired_at, 0)
		FROM products WHERE merchant_id = ?1 AND (?2 OR retired_at IS NULL)
		ORDER BY length(code), code`, merchantID, withRetired)
	if err != nil {
		return nil, fmt.Errorf("merchant: list products: %w", err)
	}
	defer rows.Close()
	out := []CatalogEntry{}
	for rows.Next() {
		var e CatalogEntry
		var created, retired int64
		if err := rows.Scan(&e.Code, &e.Name, &e.Price, &created, &retired); err != nil {
			return nil, fmt.Errorf("merchant: list products: %w", err)
		}
		e.CreatedAt, e.RetiredAt = fromMicros(created), fromMicros(retired)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("merchant: list products: %w", err)
	}
	return out, nil
}

// Product returns merchantID's product code for a purchase: its name and price now. A
// retired or unknown product is payswitch.ErrUnknownProduct.
func (c *Catalog) Product(ctx context.Context, merchantID, code string) (payswitch.Product, error) {
	p := payswitch.Product{Code: code}
	err := c.db.Reader().QueryRowContext(ctx, `SELECT name, price FROM products
		WHERE merchant_id = ? AND code = ? AND retired_at IS NULL`, merchantID, code).Scan(&p.Name, &p.Price)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return payswitch.Product{}, fmt.Errorf("%w: %s", payswitch.ErrUnknownProduct, code)
	case err != nil:
		return payswitch.Product{}, fmt.Errorf("merchant: read product: %w", err)
	}
	return p, nil
}
