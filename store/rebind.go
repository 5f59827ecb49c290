package store

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Packages write their SQL once, with SQLite's placeholders: "?" and "?NNN". PostgreSQL
// numbers its parameters "$NNN", so every statement sent to it goes through rebind first
// (on the connection, below database/sql, so that Reader, Write and prepared statements
// all take the same text). Statements that need PostgreSQL's own syntax branch on
// DB.Dialect and may use "$NNN" themselves: rebind leaves a statement without "?" as it is.

// rebind returns q with SQLite's placeholders written as PostgreSQL's: "?NNN" becomes
// "$NNN", and a bare "?" becomes "$k" where k is one more than the largest number given
// so far (SQLite's own rule, so that "?, ?2, ?" binds as SQLite binds it). Text inside
// string literals, quoted identifiers, comments and dollar-quoted strings is left alone.
func rebind(q string) string {
	if strings.IndexByte(q, '?') < 0 {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	largest := 0
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == '\'' || c == '"':
			j := skipQuoted(q, i, c)
			b.WriteString(q[i:j])
			i = j
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			j := strings.IndexByte(q[i:], '\n')
			if j < 0 {
				j = len(q) - i
			}
			b.WriteString(q[i : i+j])
			i += j
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			j := strings.Index(q[i+2:], "*/")
			end := len(q)
			if j >= 0 {
				end = i + 2 + j + 2
			}
			b.WriteString(q[i:end])
			i = end
		case c == '$':
			j := skipDollarQuoted(q, i)
			b.WriteString(q[i:j])
			i = j
		case c == '?':
			j := i + 1
			for j < len(q) && q[j] >= '0' && q[j] <= '9' {
				j++
			}
			n := largest + 1
			if j > i+1 {
				n, _ = strconv.Atoi(q[i+1 : j])
			}
			largest = max(largest, n)
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			i = j
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String()
}

// skipQuoted returns the index just past the literal or quoted identifier that starts at
// q[i] with quote; a doubled quote inside it is part of it.
func skipQuoted(q string, i int, quote byte) int {
	for j := i + 1; j < len(q); j++ {
		if q[j] == quote {
			if j+1 < len(q) && q[j+1] == quote {
				j++
				continue
			}
			return j + 1
		}
	}
	return len(q)
}

// skipDollarQuoted returns the index just past the dollar-quoted string ($$...$$ or
// $tag$...$tag$) that starts at q[i], or i+1 when the "$" starts none (a parameter
// "$1", say).
func skipDollarQuoted(q string, i int) int {
	j := i + 1
	for j < len(q) && (q[j] == '_' || q[j] >= 'a' && q[j] <= 'z' || q[j] >= 'A' && q[j] <= 'Z' ||
		j > i+1 && q[j] >= '0' && q[j] <= '9') {
		j++
	}
	if j >= len(q) || q[j] != '$' {
		return i + 1
	}
	tag := q[i : j+1]
	end := strings.Index(q[j+1:], tag)
	if end < 0 {
		return len(q)
	}
	return j + 1 + end + len(tag)
}

// maxRebound bounds rebinder's cache. The statements are the code's own texts, a few
// hundred; the bound is there should some caller build texts from data.
const maxRebound = 4096

// rebinder remembers the statements it rewrote: the switch runs the same few dozen
// statements millions of times.
type rebinder struct {
	texts sync.Map // string -> string
	n     atomic.Int64
}

func (r *rebinder) rebind(q string) string {
	if strings.IndexByte(q, '?') < 0 {
		return q
	}
	if v, ok := r.texts.Load(q); ok {
		return v.(string)
	}
	out := rebind(q)
	if r.n.Load() < maxRebound {
		if _, loaded := r.texts.LoadOrStore(q, out); !loaded {
			r.n.Add(1)
		}
	}
	return out
}
