package payswitch

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/payswitch/payswitch/store"
)

// What a payment bought is kept per payment in payment_items (migration 5): the
// product's code, name and unit price as they were when it was bought, and the quantity.

// The bounds of a purchase: items a request may list, and the quantity of one item.
const (
	maxItems    = 20
	maxQuantity = 9999
)

// ValidProductCode reports whether code can be a product code: 1 to 6 digits (contract
// section 10), the same rule for the API, BUY and the catalogue.
func ValidProductCode(code string) bool { return len(code) >= 1 && len(code) <= 6 && allDigits(code) }

// itemsTotal is what items cost together, price × quantity summed; ok is false when the
// sum passes maxAmount (it never overflows int64 on the way: each step is checked).
func itemsTotal(items []Item) (total int64, ok bool) {
	for _, it := range items {
		if it.Price <= 0 || it.Quantity <= 0 || it.Quantity > maxAmount/it.Price {
			return 0, false
		}
		line := it.Price * it.Quantity
		if line > maxAmount-total {
			return 0, false
		}
		total += line
	}
	return total, true
}

// itemsText writes items for a message: "2 x Sugar 1kg, 1 x Salt".
func itemsText(items []Item) string {
	var b strings.Builder
	for i, it := range items {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.FormatInt(it.Quantity, 10))
		b.WriteString(" x ")
		b.WriteString(it.Name)
	}
	return b.String()
}

// insertItems writes p's items in one statement, when it has any.
func insertItems(ctx context.Context, tx store.Tx, p *Payment) error {
	if len(p.Items) == 0 {
		return nil
	}
	q := make([]byte, 0, 96+len(p.Items)*16)
	q = append(q, `INSERT INTO payment_items (payment_id, line, product, name, quantity, price) VALUES `...)
	args := make([]any, 0, 6*len(p.Items))
	for i, it := range p.Items {
		if i > 0 {
			q = append(q, ", "...)
		}
		q = append(q, "(?, ?, ?, ?, ?, ?)"...)
		args = append(args, p.ID, i, it.Product, it.Name, it.Quantity, it.Price)
	}
	if _, err := tx.ExecContext(ctx, string(q), args...); err != nil {
		return fmt.Errorf("insert items of %s: %w", p.ID, err)
	}
	return nil
}

// itemsQuery reads a payment's items in order.
const itemsQuery = `SELECT product, name, quantity, price FROM payment_items WHERE payment_id = ? ORDER BY line`

// itemsOf reads payment id's items; nil when it has none.
func itemsOf(ctx context.Context, q querier, id string) ([]Item, error) {
	rows, err := q.QueryContext(ctx, itemsQuery, id)
	if err != nil {
		return nil, fmt.Errorf("items of %s: %w", id, err)
	}
	defer rows.Close()
	var out []Item
	for rows.Next() {
		var it Item
		if err := rows.Scan(&it.Product, &it.Name, &it.Quantity, &it.Price); err != nil {
			return nil, fmt.Errorf("items of %s: %w", id, err)
		}
		out = append(out, it)
	}
	return out, rows.Err()
}

// withItems fills in the items of each of ps, in one query.
func withItems(ctx context.Context, q querier, ps []*Payment) error {
	if len(ps) == 0 {
		return nil
	}
	byID := make(map[string]*Payment, len(ps))
	args := make([]any, 0, len(ps))
	for _, p := range ps {
		byID[p.ID] = p
		args = append(args, p.ID)
	}
	rows, err := q.QueryContext(ctx, `SELECT payment_id, product, name, quantity, price FROM payment_items
		WHERE payment_id IN (?`+strings.Repeat(", ?", len(ps)-1)+`) ORDER BY payment_id, line`, args...)
	if err != nil {
		return fmt.Errorf("items of payments: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var it Item
		if err := rows.Scan(&id, &it.Product, &it.Name, &it.Quantity, &it.Price); err != nil {
			return fmt.Errorf("items of payments: %w", err)
		}
		if p := byID[id]; p != nil {
			p.Items = append(p.Items, it)
		}
	}
	return rows.Err()
}

// purchase is a BUY's or a request's items as the catalogue priced them before the
// write, and what they come to; or why they cannot be bought.
type purchase struct {
	items []Item
	total int64 // math.MaxInt64 when the total passes maxAmount: above any limit
	// unknown is the first product code the catalogue does not sell (retired or never
	// made), or "".
	unknown string
}

// price asks catalog for each product of asked, sold by merchant (an account ID): the
// items with their names and prices, and their total. A product the catalogue does not
// sell (ErrUnknownProduct, or no catalogue at all) is named in unknown; any other error
// of the catalogue's is returned.
func price(ctx context.Context, catalog ProductCatalog, merchant string, asked []ItemRequest) (purchase, error) {
	var pu purchase
	for _, a := range asked {
		if catalog == nil {
			pu.unknown = a.Product
			return pu, nil
		}
		prod, err := catalog.Product(ctx, merchant, a.Product)
		switch {
		case errors.Is(err, ErrUnknownProduct), err == nil && prod.Price <= 0:
			pu.unknown = a.Product
			return pu, nil
		case err != nil:
			return purchase{}, fmt.Errorf("product %s of %s: %w", a.Product, merchant, err)
		}
		pu.items = append(pu.items, Item{Product: a.Product, Name: prod.Name, Quantity: a.Quantity, Price: prod.Price})
	}
	var ok bool
	if pu.total, ok = itemsTotal(pu.items); !ok {
		pu.total = math.MaxInt64
	}
	return pu, nil
}
