// Package texts renders the words the switch says to people: templates by key with
// {placeholders}, defaults from the code, overrides from config. The engine's SMS texts,
// the USSD screens and the spoken IVR script each keep their own set.
package texts

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"
)

// Set is one channel's texts. It is read-only once made, so safe for concurrent use.
type Set struct {
	t map[string]string
}

var placeholder = regexp.MustCompile(`\{[a-z_]+\}`)

// New merges overrides into defaults. An override for an unknown key, or an empty or
// invalid one, is an error naming the key under section (e.g. "messages"), so that a typo
// in config does not silently keep the default.
func New(section string, defaults, overrides map[string]string) (*Set, error) {
	t := make(map[string]string, len(defaults))
	for k, v := range defaults {
		t[k] = v
	}
	var unknown []string
	for k, v := range overrides {
		if _, ok := defaults[k]; !ok {
			unknown = append(unknown, k)
			continue
		}
		if strings.TrimSpace(v) == "" || !utf8.ValidString(v) {
			return nil, fmt.Errorf("%s.%s: want non-empty UTF-8 text", section, k)
		}
		t[k] = v
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("%s: unknown keys: %s", section, strings.Join(unknown, ", "))
	}
	return &Set{t: t}, nil
}

// Render fills key's placeholders from vars ({name} -> vars["name"]); a placeholder
// without a value stays as it is, and an unknown key renders as the key itself.
func (s *Set) Render(key string, vars map[string]string) string {
	tpl, ok := s.t[key]
	if !ok {
		return key
	}
	if len(vars) == 0 || !strings.Contains(tpl, "{") {
		return tpl
	}
	return placeholder.ReplaceAllStringFunc(tpl, func(p string) string {
		if v, ok := vars[p[1:len(p)-1]]; ok {
			return v
		}
		return p
	})
}

// Has reports whether key is one of the set's texts.
func (s *Set) Has(key string) bool {
	_, ok := s.t[key]
	return ok
}
