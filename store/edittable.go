package store

import (
	"fmt"
	"regexp"
	"strings"
)

// Edit replaces Old with New in a table's CREATE statement; see EditTableSQL.
type Edit struct{ Old, New string }

// EditTableSQL returns a migration that rewrites the CREATE TABLE statement SQLite keeps
// for table, applying each edit to its text, without copying a row. It is SQLite's
// documented way of changing a CHECK constraint in place (writable_schema; "Making
// Other Kinds Of Table Schema Changes" in its ALTER TABLE page), so it is only for edits
// that every existing row already satisfies and that no index depends on: a CHECK
// rewritten to an equivalent form, say. An edit whose Old text is not there changes
// nothing.
//
// The schema cookie is bumped (by creating and dropping a table) so that every other
// connection rereads the schema; the migrating connection rereads it at once
// (writable_schema = RESET).
func EditTableSQL(table string, edits ...Edit) string {
	expr := "sql"
	for _, e := range edits {
		expr = fmt.Sprintf("replace(%s, %s, %s)", expr, quote(e.Old), quote(e.New))
	}
	return fmt.Sprintf(`PRAGMA writable_schema = ON;
UPDATE sqlite_schema SET sql = %s WHERE type = 'table' AND name = %s;
PRAGMA writable_schema = RESET;
CREATE TABLE store_schema_bump (x);
DROP TABLE store_schema_bump;`, expr, quote(table))
}

// InAsOr is the edit that rewrites "column IN ('a', 'b', ...)", given exactly as the
// table's CREATE statement writes it (whitespace included), as the equivalent
// "(column = 'a' OR column = 'b' OR ...)".
//
// Why: SQLite evaluates a CHECK of the form "x IN ('a', 'b', 'c')" (three values or
// more) by building a temporary B-tree of the values every time it checks a row, which
// cost more than the row's own insert in payswitch's busiest tables. The same test
// written with OR costs a few comparisons. It panics on text of another form: the
// edits are constants of the migrations.
func InAsOr(written string) Edit {
	m := inList.FindStringSubmatch(written)
	if m == nil {
		panic(fmt.Sprintf("store: InAsOr: %q is not column IN ('value', ...)", written))
	}
	values := quoted.FindAllString(m[2], -1)
	ors := make([]string, len(values))
	for i, v := range values {
		ors[i] = m[1] + " = " + v
	}
	return Edit{Old: written, New: "(" + strings.Join(ors, " OR ") + ")"}
}

var (
	inList = regexp.MustCompile(`^(\w+) IN \(((?:'(?:[^']|'')*'(?:,\s*)?)+)\)$`)
	quoted = regexp.MustCompile(`'(?:[^']|'')*'`)
)

// quote is s as an SQL string literal.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
