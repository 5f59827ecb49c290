package store

import (
	"database/sql"
	"encoding/json"
	"math"
	"path/filepath"
	"strings"
	"testing"
)

// jsonRow's hand-written JSON must be what encoding/json reads back and, above all, what
// SQLite's ->> gives back: every value of a kept row exactly as it was passed.
func TestJSONRowGivesEveryValueBack(t *testing.T) {
	var control strings.Builder
	for c := range 0x20 {
		control.WriteByte(byte(c))
	}
	texts := []string{"", "plain", `quote " and \ backslash`, control.String(), "\x7f", "tab\tnew\nline\rreturn",
		"é ü ñ 中文 🙂", "\u2028\u2029", "</script><b>&amp;", `\u0041 not an escape`, "nul\x00inside", `"`, `\`}
	args := []any{nil, int64(0), int64(math.MaxInt64), int64(math.MinInt64), 42}
	for _, s := range texts {
		args = append(args, s)
	}
	row, ok := jsonRow(args)
	if !ok {
		t.Fatalf("row %v not taken", args)
	}
	var back []any
	if err := json.Unmarshal([]byte(row), &back); err != nil {
		t.Fatalf("%s is not JSON: %v", row, err)
	}
	if len(back) != len(args) {
		t.Fatalf("%d values back, want %d", len(back), len(args))
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "j.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for i, want := range args {
		// As an Appender's statement reads it: the row inside the group's array,
		// unpacked by jsonb_each.
		var got any
		if err := db.QueryRow(`SELECT value ->> ?2 FROM jsonb_each(?1)`, "["+row+"]", i).Scan(&got); err != nil {
			t.Fatal(err)
		}
		switch w := want.(type) {
		case nil:
			if got != nil {
				t.Errorf("value %d: %v, want NULL", i, got)
			}
		case string:
			if g, _ := got.(string); g != w {
				t.Errorf("value %d: %q, want %q", i, got, w)
			}
		default:
			wi, _ := want.(int64)
			if _, isInt := want.(int); isInt {
				wi = 42
			}
			if g, _ := got.(int64); g != wi {
				t.Errorf("value %d: %v, want %d", i, got, wi)
			}
		}
	}
	for _, bad := range []any{[]byte("blob"), 1.5, "not utf-8 \xff"} {
		if _, ok := jsonRow([]any{int64(1), bad}); ok {
			t.Errorf("jsonRow took %#v", bad)
		}
	}
}
