package config

import (
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// decoder fills a Config from a YAML node tree. It does what yaml.v3's
// Decoder.KnownFields(true) does (unknown and duplicate keys are errors), and more that a
// plain decode cannot: ${NAME} expansion on values after parsing, defaults kept where a
// value is left blank, and every error named by its key path. Scalars are converted
// from their text, not from YAML's guess at a type, so shortcode: 0722 stays "0722".
type decoder struct {
	getenv func(string) string
	lines  map[string]int // key path -> line, for Validate's messages
	errs   []error
}

func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	d.errs = append(d.errs, &Error{Key: path, Line: n.Line, Msg: fmt.Sprintf(format, args...)})
}

var durationType = reflect.TypeFor[time.Duration]()

// decode writes n into the value that ptr points to, or leaves it (its default) when n
// is null.
func (d *decoder) decode(n *yaml.Node, ptr any, path string) {
	d.value(n, reflect.ValueOf(ptr).Elem(), path, 0)
}

func (d *decoder) value(n *yaml.Node, v reflect.Value, path string, depth int) {
	if n.Kind == yaml.AliasNode {
		if depth > 32 {
			d.fail(n, path, "aliases nest too deep")
			return
		}
		d.value(n.Alias, v, path, depth+1)
		return
	}
	if path != "" {
		d.lines[path] = n.Line
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // blank, ~ or null: keep the default
	}
	switch {
	case v.Kind() == reflect.Struct:
		d.structure(n, v, path, depth)
	case v.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(n, path, "want a list, got %s", describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			e := s.Index(i)
			e.Set(elementDefault(e.Type()))
			d.value(item, e, fmt.Sprintf("%s[%d]", path, i), depth)
		}
		v.Set(s)
	case v.Kind() == reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.fail(n, path, "want a mapping of keys to values, got %s", describe(n))
			return
		}
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			key := join(path, k.Value)
			if seen[k.Value] {
				d.fail(k, key, "key given twice")
				continue
			}
			seen[k.Value] = true
			e := reflect.New(v.Type().Elem()).Elem()
			d.value(val, e, key, depth)
			v.SetMapIndex(reflect.ValueOf(k.Value), e)
		}
	default:
		d.scalar(n, v, path)
	}
}

func (d *decoder) structure(n *yaml.Node, v reflect.Value, path string, depth int) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, orTop(path), "want a mapping of keys, got %s", describe(n))
		return
	}
	t := v.Type()
	fields := map[string]int{}
	var known []string
	for i := range t.NumField() {
		if tag := t.Field(i).Tag.Get("yaml"); tag != "" && tag != "-" {
			fields[tag] = i
			known = append(known, tag)
		}
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		key := join(path, k.Value)
		if k.Kind != yaml.ScalarNode {
			d.fail(k, orTop(path), "a key must be a plain name, got %s", describe(k))
			continue
		}
		if k.Value == "<<" {
			d.fail(k, key, "merge keys are not supported; repeat the keys")
			continue
		}
		f, ok := fields[k.Value]
		if !ok {
			d.fail(k, key, "unknown key (known keys here: %s)", strings.Join(known, ", "))
			continue
		}
		if seen[k.Value] {
			d.fail(k, key, "key given twice")
			continue
		}
		seen[k.Value] = true
		d.value(val, v.Field(f), key, depth)
	}
}

func (d *decoder) scalar(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, path, "want a single value, got %s", describe(n))
		return
	}
	s, err := expand(n.Value, d.getenv)
	if err != nil {
		d.fail(n, path, "%v", err)
		return
	}
	if s == "" && s != n.Value {
		return // only unset variables: keep the default
	}
	switch {
	case v.Type() == durationType:
		dur, err := time.ParseDuration(s)
		if err != nil {
			if durationSyntax.MatchString(s) {
				// Well formed, but past what a duration holds (about 292 years).
				d.fail(n, path, "%q is too large: at most %s", s, time.Duration(math.MaxInt64).Truncate(time.Hour))
				return
			}
			d.fail(n, path, "%q is not a duration such as 30s, 5m or 1h30m", s)
			return
		}
		v.SetInt(int64(dur))
	case v.Kind() == reflect.String:
		v.SetString(s)
	case v.CanInt():
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v.OverflowInt(i) {
			d.fail(n, path, "%q is not a whole number", s)
			return
		}
		v.SetInt(i)
	case v.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			d.fail(n, path, "%q is not true or false", s)
			return
		}
		v.SetBool(b)
	default:
		d.fail(n, path, "cannot hold a %s", v.Type()) // a Config field of a type this decoder does not know
	}
}

// expand replaces ${NAME} and ${NAME:-default} with getenv's answers; "$${" is a
// literal "${". Any other '$' is left alone.
func expand(s string, getenv func(string) string) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		if i > 0 && s[i-1] == '$' {
			b.WriteString(s[:i-1] + "${")
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", fmt.Errorf("%q has ${ without a closing }", s[i:])
		}
		ref := s[i+2 : i+end]
		name, def, hasDef := strings.Cut(ref, ":-")
		if !validName(name) {
			return "", fmt.Errorf("${%s}: %q is not a variable name (letters, digits and _, not starting with a digit)", ref, name)
		}
		val := getenv(name)
		if val == "" && hasDef {
			val = def
		}
		b.WriteString(val)
		s = s[i+end+1:]
	}
}

func validName(s string) bool {
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	return !strings.ContainsFunc(s, func(r rune) bool {
		return !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	})
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func orTop(path string) string {
	if path == "" {
		return "the file"
	}
	return path
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return strconv.Quote(n.Value)
	}
	return "something else"
}

// knownKeys is used by tests to check that every key of Config is documented.
func knownKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		if tag == "" || tag == "-" {
			continue
		}
		key := join(prefix, tag)
		keys = append(keys, key)
		ft := f.Type
		if ft.Kind() == reflect.Slice {
			ft = ft.Elem()
			key += "[]"
		}
		if ft.Kind() == reflect.Struct && ft != durationType {
			keys = append(keys, knownKeys(ft, key)...)
		}
	}
	slices.Sort(keys)
	return keys
}

// yamlErrLine finds the line number in yaml.v3's "yaml: line N: ..." messages.
var yamlErrLine = regexp.MustCompile(`^yaml: line (\d+):`)

// tabIndented returns the line to blame when err, yaml.v3's error for data, comes from a
// tab in the indentation, or 0. yaml.v3 reports such a tab as "found character that
// cannot start any token" or "found a tab character that violates indentation", and
// sometimes names the line before it, which sends people looking in the wrong place; so
// the line is the one named when it is indented with a tab, else the first line of the
// file that is.
func tabIndented(data []byte, err error) int {
	msg := err.Error()
	if !strings.Contains(msg, "tab character") && !strings.Contains(msg, "cannot start any token") {
		return 0
	}
	lines := strings.Split(string(data), "\n")
	if m := yamlErrLine.FindStringSubmatch(msg); m != nil {
		if n, _ := strconv.Atoi(m[1]); n >= 1 && n <= len(lines) && tabInIndent(lines[n-1]) {
			return n
		}
	}
	for i, line := range lines {
		if tabInIndent(line) {
			return i + 1
		}
	}
	return 0
}

// tabInIndent reports whether line's leading white space holds a tab.
func tabInIndent(line string) bool {
	indent := line[:len(line)-len(strings.TrimLeft(line, " \t"))]
	return strings.Contains(indent, "\t")
}

// durationSyntax matches what time.ParseDuration reads, whatever its size.
var durationSyntax = regexp.MustCompile(`^[-+]?([0-9]*(\.[0-9]*)?(ns|us|µs|μs|ms|s|m|h))+$`)
