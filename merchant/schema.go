package merchant

import "github.com/payswitch/payswitch/store"

// Schema holds the package's tables. Times are Unix microseconds (UTC).
//
// merchant_keys keeps a key's SHA-256 digest, never the key: the key is 256 random bits,
// so a plain hash cannot be reversed by guessing, and a lookup by digest (unique, so one
// probe) finds it. A revoked key keeps its row, with revoked_at, so that the list shows
// when it stopped working.
//
// products is keyed by merchant and code. A retired product keeps its row and its code:
// past payments name its code, and a new product under the same code would make them
// read as something else.
var Schema = store.Schema{Component: "merchant", Migrations: []string{`
CREATE TABLE merchant_keys (
	id          TEXT PRIMARY KEY,
	merchant_id TEXT NOT NULL,
	name        TEXT NOT NULL,
	digest      BLOB NOT NULL,
	created_at  INTEGER NOT NULL,
	revoked_at  INTEGER          -- NULL while the key works
) STRICT;
CREATE UNIQUE INDEX merchant_keys_digest ON merchant_keys (digest);
CREATE INDEX merchant_keys_by_merchant ON merchant_keys (merchant_id, created_at);

CREATE TABLE products (
	merchant_id TEXT NOT NULL,
	code        TEXT NOT NULL,
	name        TEXT NOT NULL,
	price       INTEGER NOT NULL CHECK (price > 0),
	created_at  INTEGER NOT NULL,
	retired_at  INTEGER,         -- NULL while it can be bought
	PRIMARY KEY (merchant_id, code)
) STRICT, WITHOUT ROWID;
`, migrationEscrow}}

// migrationEscrow keeps which merchants' payments are guaranteed (contract section 11):
// a row for each merchant an operator turned escrow on for, none for the others. Only an
// operator adds rows, one at most per merchant account.
const migrationEscrow = `
CREATE TABLE merchant_escrow (
	merchant_id TEXT PRIMARY KEY,
	since       INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
`
