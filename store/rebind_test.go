package store

import "testing"

func TestRebindNumbersPlaceholdersAsSQLiteDoes(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"SELECT 1", "SELECT 1"},
		{"INSERT INTO t (a, b) VALUES (?, ?)", "INSERT INTO t (a, b) VALUES ($1, $2)"},
		{"SELECT ?1 WHERE a = ?2 OR b = ?1", "SELECT $1 WHERE a = $2 OR b = $1"},
		// A bare ? takes one more than the largest number given so far.
		{"SELECT ?, ?5, ?", "SELECT $1, $5, $6"},
		{"SELECT ?2, ?", "SELECT $2, $3"},
		// Literals, quoted identifiers and comments keep their question marks.
		{"SELECT 'what?', \"col?\" FROM t WHERE a = ?", "SELECT 'what?', \"col?\" FROM t WHERE a = $1"},
		{"SELECT 'it''s ?' , ?", "SELECT 'it''s ?' , $1"},
		{"SELECT ? -- why?\n, ?", "SELECT $1 -- why?\n, $2"},
		{"SELECT /* ? */ ?", "SELECT /* ? */ $1"},
		// Dollar quoting.
		{"SELECT $$a?b$$, ?", "SELECT $$a?b$$, $1"},
		{"SELECT $fn$ x ? $fn$, ?", "SELECT $fn$ x ? $fn$, $1"},
		// Unterminated text is copied as it is.
		{"SELECT 'open ?", "SELECT 'open ?"},
	} {
		if got := rebind(c.in); got != c.want {
			t.Errorf("rebind(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestRebinderCachesUpToItsBound(t *testing.T) {
	var r rebinder
	for i := range maxRebound + 10 {
		q := "SELECT ? -- " + string(rune('a'+i%26)) + string(rune(i))
		if got := r.rebind(q); got != rebind(q) {
			t.Fatalf("rebinder(%q) = %q, want %q", q, got, rebind(q))
		}
	}
	if n := r.n.Load(); n != maxRebound {
		t.Fatalf("cached %d texts, want the bound %d", n, maxRebound)
	}
}
