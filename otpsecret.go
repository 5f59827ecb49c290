package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/rs/zerolog"

	"github.com/payswitch/payswitch/config"
	"github.com/payswitch/payswitch/otp"
)

// secretFileEnv names the key file when otp.secret and otp.secret_file are both empty.
const secretFileEnv = "PAYSWITCH_OTP_SECRET_FILE"

// otpSecret is the key codes are hashed with: from config (an env variable, usually), or
// generated once into a file and kept there. The file is kept away from the database by
// default (secretFile): a copy of the data folder that also held the key would let its
// holder try every code of a live payment offline and open the queued code SMS.
func otpSecret(cfg *config.Config, log zerolog.Logger) ([]byte, error) {
	if cfg.OTP.Secret != "" {
		return otp.ParseSecret(cfg.OTP.Secret)
	}
	path, err := secretFile(cfg, os.Getenv, os.UserConfigDir)
	if err != nil {
		return nil, err
	}
	if dataDir := filepath.Dir(cfg.Database.Path); cfg.Database.Path != "" && within(dataDir, path) {
		// The path only, never the key.
		log.Warn().Str("otp_secret_file", path).Str("database_dir", dataDir).
			Msg("THE OTP KEY FILE IS IN THE DATABASE'S FOLDER: whoever gets a copy of that folder (a backup, a stolen disk) " +
				"can test every code of a live payment offline and read the queued code SMS; " +
				"move it elsewhere and set otp.secret_file, or set otp.secret")
	}
	return otp.LoadOrCreateSecret(path)
}

// secretFile is where the key file is: otp.secret_file, else $PAYSWITCH_OTP_SECRET_FILE,
// else otp.secret in the payswitch folder of the user's config folder ($XDG_CONFIG_HOME
// or ~/.config on Linux), which LoadOrCreateSecret creates with mode 0700 on first start
// so that `go run . serve` needs no setup.
func secretFile(cfg *config.Config, getenv func(string) string, userConfigDir func() (string, error)) (string, error) {
	if cfg.OTP.SecretFile != "" {
		return cfg.OTP.SecretFile, nil
	}
	if p := getenv(secretFileEnv); p != "" {
		return p, nil
	}
	// A release before this one made the key beside the database. Making a new key
	// elsewhere would kill the codes of payments waiting at the upgrade and the queued
	// code SMS, so that file is kept in use, and otpSecret warns at every start until
	// the operator moves it.
	if legacy := filepath.Join(filepath.Dir(cfg.Database.Path), "otp.secret"); cfg.Database.Path != "" && regularFile(legacy) {
		return legacy, nil
	}
	dir, err := userConfigDir()
	if err != nil {
		return "", fmt.Errorf("otp: no folder for the key file (%w): set otp.secret, otp.secret_file or %s", err, secretFileEnv)
	}
	return filepath.Join(dir, "payswitch", "otp.secret"), nil
}

// regularFile reports whether path names a regular file (a link is not followed).
func regularFile(path string) bool {
	fi, err := os.Lstat(path)
	return err == nil && fi.Mode().IsRegular()
}

// within reports whether path is dir or lies under it, after resolving what links can be
// resolved (a folder reached through a link is still the same folder).
func within(dir, path string) bool {
	abs := func(p string) string {
		a, err := filepath.Abs(p)
		if err != nil {
			return filepath.Clean(p)
		}
		// The file may not exist yet: resolve its folder.
		if r, err := filepath.EvalSymlinks(a); err == nil {
			return r
		}
		if r, err := filepath.EvalSymlinks(filepath.Dir(a)); err == nil {
			return filepath.Join(r, filepath.Base(a))
		}
		return a
	}
	rel, err := filepath.Rel(abs(dir), abs(path))
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}
