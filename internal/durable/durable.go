// Package durable holds the two calls that make a file's writes survive a crash of the
// machine, shared by the store's WAL syncer and the receipt journal.
package durable

import "os"

// SyncDir makes the names in dir durable: a file just created or renamed there.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
