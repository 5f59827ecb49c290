package seal

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestSealOpens(t *testing.T) {
	key := []byte("0123456789abcdef0123")
	s, err := New(key, "use a")
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := s.Seal([]byte("code 482913"), []byte("row 1"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, "482913") {
		t.Fatalf("sealed %q shows the plain text", sealed)
	}
	again, _ := s.Seal([]byte("code 482913"), []byte("row 1"))
	if again == sealed {
		t.Fatal("two seals of one value are equal: the nonce is not random")
	}
	plain, err := s.Open(sealed, []byte("row 1"))
	if err != nil || !bytes.Equal(plain, []byte("code 482913")) {
		t.Fatalf("Open = %q, %v", plain, err)
	}
	other, _ := New(key, "use b")
	otherKey, _ := New([]byte("fedcba9876543210fedc"), "use a")
	for name, open := range map[string]func() ([]byte, error){
		"another row":   func() ([]byte, error) { return s.Open(sealed, []byte("row 2")) },
		"another label": func() ([]byte, error) { return other.Open(sealed, []byte("row 1")) },
		"another key":   func() ([]byte, error) { return otherKey.Open(sealed, []byte("row 1")) },
		"not base64":    func() ([]byte, error) { return s.Open("%%%", nil) },
		"too short":     func() ([]byte, error) { return s.Open("AAAA", nil) },
		"tampered":      func() ([]byte, error) { return s.Open(sealed[:len(sealed)-4]+"AAAA", []byte("row 1")) },
		"empty":         func() ([]byte, error) { return s.Open("", nil) },
	} {
		if _, err := open(); !errors.Is(err, ErrOpen) {
			t.Errorf("%s: %v, want ErrOpen", name, err)
		}
	}
	if _, err := New([]byte("short"), "x"); err == nil {
		t.Error("a 5-byte key was taken")
	}
}
