package replica

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/superfly/ltx"
)

// key names one LTX file: its level and the transactions it covers.
type key struct {
	level    int
	min, max ltx.TXID
}

func keyOf(info *ltx.FileInfo) key { return key{info.Level, info.MinTXID, info.MaxTXID} }

func (k key) String() string { return fmt.Sprintf("L%d/%s", k.level, ltx.FormatFilename(k.min, k.max)) }

// entry is one file every replica is to hold.
type entry struct {
	info ltx.FileInfo
	// local: its content is in the stage (some replica may lack it). Otherwise only
	// its stub is, and the replicas that hold it are its only copies.
	local bool
	// version is the hub's counter when it was written: a file Litestream writes again
	// under the same name gets a new one, and is sent again.
	version uint64
}

// stage is the folder beside the database (.NAME-replicas) where the files Litestream
// writes wait until every replica holds them. It also keeps, as empty stubs, the names
// of the files every replica already holds, so that after a restart the switch knows
// what the replicas are to hold without asking them: one that cannot be reached then
// must not hold the others back.
//
// ltx/<level>/<min>-<max>.ltx is a file's content; ltx/<level>/<min>-<max>.ltx.shipped-<size>
// an empty stub whose modification time is the file's creation time. unverified.json
// names the replicas that could not be listed when the stage was rebuilt (rebuild.go).
type stage struct {
	dir string
}

const (
	stubMark       = ".shipped-"
	tmpMark        = ".tmp-"
	unverifiedFile = "unverified.json"
)

// stageDir is the stage of the database at dbPath.
func stageDir(dbPath string) string {
	return filepath.Join(filepath.Dir(dbPath), "."+filepath.Base(dbPath)+"-replicas")
}

func (s stage) levelDir(level int) string {
	return filepath.Join(s.dir, "ltx", strconv.Itoa(level))
}

func (s stage) contentPath(k key) string {
	return filepath.Join(s.levelDir(k.level), ltx.FormatFilename(k.min, k.max))
}

func (s stage) stubPath(k key, size int64) string {
	return s.contentPath(k) + stubMark + strconv.FormatInt(size, 10)
}

// unverifiedState is unverified.json: the replicas not yet compared with the one the
// stage was rebuilt from, and how far that one went.
type unverifiedState struct {
	TXID     ltx.TXID `json:"txid"`
	Replicas []string `json:"replicas"`
}

// load reads the stage; nil files when there is none yet.
func (s stage) load() (map[key]*entry, unverifiedState, error) {
	var unv unverifiedState
	if _, err := os.Stat(s.dir); errors.Is(err, fs.ErrNotExist) {
		return nil, unv, nil
	} else if err != nil {
		return nil, unv, err
	}
	if b, err := os.ReadFile(filepath.Join(s.dir, unverifiedFile)); err == nil {
		if err := json.Unmarshal(b, &unv); err != nil {
			return nil, unv, fmt.Errorf("%s: %w", unverifiedFile, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, unv, err
	}
	files := map[key]*entry{}
	levels, err := os.ReadDir(filepath.Join(s.dir, "ltx"))
	if errors.Is(err, fs.ErrNotExist) {
		return files, unv, nil
	} else if err != nil {
		return nil, unv, err
	}
	for _, lv := range levels {
		level, err := strconv.Atoi(lv.Name())
		if err != nil || !lv.IsDir() {
			continue
		}
		if err := s.loadLevel(level, files); err != nil {
			return nil, unv, err
		}
	}
	return files, unv, nil
}

func (s stage) loadLevel(level int, files map[key]*entry) error {
	dir := s.levelDir(level)
	names, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, de := range names {
		name := de.Name()
		if strings.Contains(name, tmpMark) { // a write that did not finish
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return err
			}
			continue
		}
		base, sizeText, isStub := strings.Cut(name, stubMark)
		min, max, err := ltx.ParseFilename(base)
		if err != nil {
			continue
		}
		k := key{level, min, max}
		if isStub {
			size, err := strconv.ParseInt(sizeText, 10, 64)
			if err != nil {
				continue
			}
			if e := files[k]; e != nil && e.local { // the content was written again after
				if err := os.Remove(filepath.Join(dir, name)); err != nil {
					return err
				}
				continue
			}
			fi, err := de.Info()
			if err != nil {
				return err
			}
			files[k] = &entry{info: ltx.FileInfo{Level: level, MinTXID: min, MaxTXID: max, Size: size,
				CreatedAt: fi.ModTime().UTC()}}
			continue
		}
		info, err := contentInfo(filepath.Join(dir, name), k)
		if err != nil {
			return err
		}
		if old := files[k]; old != nil { // its stub, left by a rewrite that stopped midway
			if err := os.Remove(s.stubPath(k, old.info.Size)); err != nil {
				return err
			}
		}
		files[k] = &entry{info: info, local: true}
	}
	return nil
}

// contentInfo describes an LTX file in the stage; its creation time is its header's, as
// Litestream's own replicas record it.
func contentInfo(path string, k key) (ltx.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return ltx.FileInfo{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return ltx.FileInfo{}, err
	}
	hdr, _, err := ltx.PeekHeader(f)
	if err != nil {
		return ltx.FileInfo{}, fmt.Errorf("%s: %w", path, err)
	}
	return ltx.FileInfo{Level: k.level, MinTXID: k.min, MaxTXID: k.max, Size: fi.Size(),
		CreatedAt: time.UnixMilli(hdr.Timestamp).UTC()}, nil
}

var tmpSeq atomic.Int64

// prepare writes what r holds into a temporary file of the stage and describes it;
// commit puts it in place. Litestream's own level-0 files come as the open file, and
// are linked rather than copied (Litestream never changes one once written).
func (s stage) prepare(k key, r io.Reader) (tmp string, info ltx.FileInfo, err error) {
	if err := os.MkdirAll(s.levelDir(k.level), 0o700); err != nil {
		return "", info, err
	}
	tmp = s.contentPath(k) + tmpMark + strconv.FormatInt(tmpSeq.Add(1), 10)
	if !linked(r, tmp) {
		if err := copyInto(tmp, r); err != nil {
			os.Remove(tmp)
			return "", info, err
		}
	}
	info, err = contentInfo(tmp, k)
	if err != nil {
		os.Remove(tmp)
		return "", info, err
	}
	return tmp, info, nil
}

func linked(r io.Reader, tmp string) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	if off, err := f.Seek(0, io.SeekCurrent); err != nil || off != 0 {
		return false
	}
	return os.Link(f.Name(), tmp) == nil
}

func copyInto(path string, r io.Reader) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// commit moves a prepared file into place, over what the stage held under its name.
func (s stage) commit(k key, tmp string, old *entry) error {
	if err := os.Rename(tmp, s.contentPath(k)); err != nil {
		os.Remove(tmp)
		return err
	}
	if old != nil && !old.local {
		if err := os.Remove(s.stubPath(k, old.info.Size)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return syncDir(s.levelDir(k.level))
}

// drop replaces a file's content with its stub, once every replica holds it. The
// caller syncs the level's folder.
func (s stage) drop(k key, e *entry) error {
	if err := s.writeStub(k, e.info); err != nil {
		return err
	}
	return os.Remove(s.contentPath(k))
}

func (s stage) writeStub(k key, info ltx.FileInfo) error {
	stub := s.stubPath(k, info.Size)
	f, err := os.OpenFile(stub, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Chtimes(stub, info.CreatedAt, info.CreatedAt)
}

// remove forgets a file Litestream deleted.
func (s stage) remove(k key, e *entry) error {
	path := s.stubPath(k, e.info.Size)
	if e.local {
		path = s.contentPath(k)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// create makes the stage from a replica's list of files (rebuild.go): stubs only, in a
// folder renamed into place when complete, so that a stage is never half made.
func (s stage) create(infos []*ltx.FileInfo, unv unverifiedState) error {
	tmp := s.dir + ".new"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	build := stage{dir: tmp}
	if err := os.MkdirAll(filepath.Join(tmp, "ltx"), 0o700); err != nil {
		return err
	}
	levels := map[int]bool{}
	for _, info := range infos {
		if !levels[info.Level] {
			if err := os.MkdirAll(build.levelDir(info.Level), 0o700); err != nil {
				return err
			}
			levels[info.Level] = true
		}
		if err := build.writeStub(keyOf(info), *info); err != nil {
			return err
		}
	}
	if len(unv.Replicas) > 0 {
		if err := build.writeUnverified(unv); err != nil {
			return err
		}
	}
	for level := range levels {
		if err := syncDir(build.levelDir(level)); err != nil {
			return err
		}
	}
	if err := syncDir(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, s.dir); err != nil {
		return err
	}
	return syncDir(filepath.Dir(s.dir))
}

// writeUnverified records the replicas still to be compared; none: the file goes.
func (s stage) writeUnverified(unv unverifiedState) error {
	path := filepath.Join(s.dir, unverifiedFile)
	if len(unv.Replicas) == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	b, err := json.Marshal(unv)
	if err != nil {
		return err
	}
	tmp := path + tmpMark + "0"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := copyInto(tmp, strings.NewReader(string(b))); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(s.dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
