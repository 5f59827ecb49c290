package otp

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// LoadOrCreateSecret returns the HMAC secret kept hex-encoded in the file at path. On
// first use (no file) it creates 32 random bytes, in a directory made with mode 0700 if
// missing and a file with mode 0600, written completely before it appears under its name
// so that a crash never leaves a half-written secret. A file that group or others may
// read or write is refused with an error naming it: a leaked secret lets anyone who also
// reads the database test codes offline.
//
// Losing the file invalidates only the codes outstanding at that moment and the code
// SMS still queued (sealed with a key derived from it), never the books. Keep it out of
// the database's folder: a copy of both lets its holder test codes offline.
func LoadOrCreateSecret(path string) ([]byte, error) {
	secret, err := readSecret(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return secret, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("otp: secret directory %q: %w", dir, err)
	}
	secret = make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("otp: random: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".otp-secret-*") // CreateTemp uses mode 0600
	if err != nil {
		return nil, fmt.Errorf("otp: create secret %q: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(hex.EncodeToString(secret) + "\n")
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("otp: write secret %q: %w", path, err)
	}
	// Link, unlike Rename, fails if path appeared meanwhile: a second process that raced
	// us then uses the secret that won instead of overwriting it.
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return readSecret(path)
		}
		if err := os.Rename(tmp.Name(), path); err != nil {
			return nil, fmt.Errorf("otp: create secret %q: %w", path, err)
		}
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync() // make the new name durable; best effort
		d.Close()
	}
	return secret, nil
}

func readSecret(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("otp: secret %q: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %q is not a regular file", ErrBadSecret, path)
	}
	// Windows reports no Unix permission bits worth checking.
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("%w: %q has mode %#o; it must be readable by its owner only (chmod 600 %s)",
			ErrBadSecret, path, perm, path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("otp: secret %q: %w", path, err)
	}
	secret, err := hex.DecodeString(strings.TrimSpace(string(data)))
	if err != nil {
		return nil, fmt.Errorf("%w: %q does not hold hex: %v", ErrBadSecret, path, err)
	}
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("%w: %q holds %d bytes, want at least %d", ErrBadSecret, path, len(secret), MinSecretLen)
	}
	return secret, nil
}

// ParseSecret turns otp.secret from config into key bytes. Surrounding spaces are
// ignored. A hex string of at least 32 digits (16 bytes) is decoded; any other string of
// at least 32 characters is used as its raw bytes (so a passphrase works, and a string
// that happens to be valid hex is always taken as hex). Anything shorter is ErrBadSecret.
func ParseSecret(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if b, err := hex.DecodeString(s); err == nil && len(b) >= MinSecretLen {
		return b, nil
	}
	if len(s) >= 2*MinSecretLen {
		return []byte(s), nil
	}
	return nil, fmt.Errorf("%w: want at least %d hex digits or %d characters, got %d characters",
		ErrBadSecret, 2*MinSecretLen, 2*MinSecretLen, len(s))
}
