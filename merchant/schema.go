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
var Schema = store.Schema{Component: "merchant", Migrations: []string{migrationKeysProducts, migrationEscrow, migrationStores},
	Postgres: postgresMigrations}

const migrationKeysProducts = `
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
`

// migrationEscrow keeps which merchants' payments are guaranteed (contract section 11):
// a row for each merchant an operator turned escrow on for, none for the others. Only an
// operator adds rows, one at most per merchant account.
const migrationEscrow = `
CREATE TABLE merchant_escrow (
	merchant_id TEXT PRIMARY KEY,
	since       INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
`

// migrationStores adds merchants' stores (contract section 11). A till is unique among
// tills (UNIQUE) and among merchant codes, which are the ledger's (accounts.code): the
// two triggers refuse a till that is a code and a code that is a till, whichever is
// written second, so that a code resolves to one payee whatever wrote it. A store's
// phone is unique among stores: SALES from it names one store. The schema needs the
// ledger's, opened before it (as serve does).
const migrationStores = `
CREATE TABLE stores (
	id          TEXT PRIMARY KEY,
	merchant_id TEXT NOT NULL,
	name        TEXT NOT NULL,
	till        TEXT NOT NULL UNIQUE,
	msisdn      TEXT NOT NULL DEFAULT '',  -- '' for none
	status      TEXT NOT NULL CHECK (status = 'open' OR status = 'closed'),
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX stores_by_merchant ON stores (merchant_id, created_at);
CREATE UNIQUE INDEX stores_msisdn ON stores (msisdn) WHERE msisdn <> '';
CREATE TRIGGER stores_till_not_a_code BEFORE INSERT ON stores
WHEN EXISTS (SELECT 1 FROM accounts WHERE code = NEW.till)
BEGIN SELECT RAISE(ABORT, 'merchant: till_taken: the till is a merchant code'); END;
CREATE TRIGGER stores_till_fixed BEFORE UPDATE OF till ON stores
WHEN NEW.till <> OLD.till
BEGIN SELECT RAISE(ABORT, 'merchant: a till never changes'); END;
CREATE TRIGGER accounts_code_not_a_till BEFORE INSERT ON accounts
WHEN NEW.code IS NOT NULL AND EXISTS (SELECT 1 FROM stores WHERE till = NEW.code)
BEGIN SELECT RAISE(ABORT, 'merchant: till_taken: the code is a store''s till'); END;
CREATE TRIGGER accounts_code_change_not_a_till BEFORE UPDATE OF code ON accounts
WHEN NEW.code IS NOT NULL AND EXISTS (SELECT 1 FROM stores WHERE till = NEW.code)
BEGIN SELECT RAISE(ABORT, 'merchant: till_taken: the code is a store''s till'); END;
`
