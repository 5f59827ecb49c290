// Package outdir writes files into a folder that a person named on the command line (an
// auditor's export folder, a settlement drop folder), which others may be able to write in
// too. Whoever can write there can plant a symbolic link where the switch is about to
// write; following it would let them make the switch overwrite any file it may write.
//
// So every file is created new, with O_CREATE|O_EXCL and never through a link (O_NOFOLLOW;
// on Linux os.Root adds it to every open), mode 0600, under its name plus ".partial", and
// renamed to its name only once complete. A name already taken (a file left by a run that
// crashed, a planted link, anything) is refused with an error naming it: nothing is written
// through it and nothing is removed, since a file we cannot prove is ours is the operator's
// to look at. A rename replaces a link at the final name itself, never the file it points
// to. Every operation goes through one handle on the folder (os.Root), so renaming or
// replacing the folder's path meanwhile cannot send a later write somewhere else.
package outdir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// PartialSuffix ends the name a file is written under until it is complete.
const PartialSuffix = ".partial"

// ErrTaken is returned (wrapped, with the path) when a name Create needs is already taken.
var ErrTaken = errors.New("outdir: name already taken")

// Dir is an open output folder. It is not safe for concurrent use.
type Dir struct {
	root *os.Root
	path string // as the caller named it, for messages
}

// Open creates the folder path if needed (mode 0700) and opens it.
func Open(path string) (*Dir, error) {
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, fmt.Errorf("create folder %q: %w", path, err)
	}
	root, err := os.OpenRoot(path)
	if err != nil {
		return nil, fmt.Errorf("open folder %q: %w", path, err)
	}
	return &Dir{root: root, path: path}, nil
}

// Close releases the folder.
func (d *Dir) Close() error { return d.root.Close() }

// Path is name's path as the caller would write it, for messages.
func (d *Dir) Path(name string) string { return filepath.Join(d.path, name) }

// Lstat describes name itself: a link is reported as a link, not followed.
func (d *Dir) Lstat(name string) (fs.FileInfo, error) { return d.root.Lstat(name) }

// CreatePartial creates name+".partial", new, mode 0600, open for writing. An existing
// entry of that name (of any kind) is ErrTaken, and is left alone.
func (d *Dir) CreatePartial(name string) (*os.File, error) {
	partial := name + PartialSuffix
	// os.Root opens the last element with O_NOFOLLOW and, with O_CREATE|O_EXCL, never
	// follows a link whatever the OS answers: a dangling link is "exists" too.
	f, err := d.root.OpenFile(partial, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("%w: %s exists (left by an interrupted run, or put there by someone "+
			"else); nothing was written through it: check what it is, remove it and run again", ErrTaken, d.Path(partial))
	}
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", d.Path(partial), err)
	}
	return f, nil
}

// Publish renames name+".partial", complete and synced, to name. Whatever held name is
// replaced: a link is replaced itself, its target untouched.
func (d *Dir) Publish(name string) error {
	if err := d.root.Rename(name+PartialSuffix, name); err != nil {
		return fmt.Errorf("publish %s: %w", d.Path(name), err)
	}
	return nil
}

// Discard removes name+".partial" after a failure; call it only for a partial this run
// created.
func (d *Dir) Discard(name string) {
	d.root.Remove(name + PartialSuffix)
}

// WriteFile writes data as name: created as name+".partial" (see CreatePartial), synced,
// then published and the folder synced, so that name appears complete or not at all.
func (d *Dir) WriteFile(name string, data []byte) error {
	f, err := d.CreatePartial(name)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		d.Discard(name)
		return fmt.Errorf("write %s: %w", d.Path(name+PartialSuffix), err)
	}
	if err := d.Publish(name); err != nil {
		d.Discard(name)
		return err
	}
	d.Sync()
	return nil
}

// Sync makes the folder's renames durable. It is best effort: a folder that cannot be
// synced (some platforms and file systems) is no reason to fail files already synced.
func (d *Dir) Sync() {
	if f, err := d.root.Open("."); err == nil {
		f.Sync()
		f.Close()
	}
}
