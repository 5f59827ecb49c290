package texts

import (
	"strings"
	"testing"
)

func TestRenderAndOverrides(t *testing.T) {
	defaults := map[string]string{"hi": "Hello {name}, {missing} {name}.", "plain": "No vars"}
	s, err := New("messages", defaults, map[string]string{"plain": "Overridden"})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Render("hi", map[string]string{"name": "Ann"}); got != "Hello Ann, {missing} Ann." {
		t.Fatalf("Render = %q", got)
	}
	if got := s.Render("plain", nil); got != "Overridden" {
		t.Fatalf("override = %q", got)
	}
	if got := s.Render("nope", nil); got != "nope" || s.Has("nope") || !s.Has("hi") {
		t.Fatalf("unknown key renders %q", got)
	}
	if _, err := New("messages", defaults, map[string]string{"hii": "x"}); err == nil || !strings.Contains(err.Error(), "messages: unknown keys: hii") {
		t.Fatalf("unknown override: %v", err)
	}
	if _, err := New("ussd.messages", defaults, map[string]string{"hi": "  "}); err == nil || !strings.Contains(err.Error(), "ussd.messages.hi") {
		t.Fatalf("empty override: %v", err)
	}
}
