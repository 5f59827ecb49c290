package replica

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/rs/zerolog"
	"github.com/superfly/ltx"
)

// TestARoundEndsAtAFileLetGo: when Litestream lets a file go (compacts it into another)
// while a replica's round is sending, the round stops before the files after it, which
// would leave the replica with a gap that a restore refuses ("non-contiguous ltx
// files"); the next round sends what replaced it, then the rest.
func TestARoundEndsAtAFileLetGo(t *testing.T) {
	ctx := context.Background()
	h := &hub{stage: stage{dir: t.TempDir()}, files: map[key]*entry{}, log: zerolog.Nop(), relistEvery: time.Hour}
	for id := ltx.TXID(1); id <= 3; id++ {
		if _, err := h.WriteLTXFile(ctx, 0, id, id, bytes.NewReader(ltxHeader(t, id, id))); err != nil {
			t.Fatal(err)
		}
	}
	var written []key
	client := &onWriteClient{onWrite: func(k key) {
		written = append(written, k)
		if k == (key{0, 1, 1}) { // Litestream compacts 1-2 meanwhile, and lets 2 go
			if _, err := h.WriteLTXFile(ctx, 1, 1, 2, bytes.NewReader(ltxHeader(t, 1, 2))); err != nil {
				t.Fatal(err)
			}
			if err := h.DeleteLTXFiles(ctx, []*ltx.FileInfo{{Level: 0, MinTXID: 2, MaxTXID: 2}}); err != nil {
				t.Fatal(err)
			}
		}
	}}
	r := &target{name: "r", client: client, has: map[key]held{}, listedAt: time.Now()}
	h.targets = []*target{r}
	if _, err := h.shipOnce(ctx, r); err != nil {
		t.Fatal(err)
	}
	if len(written) != 1 || written[0] != (key{0, 1, 1}) {
		t.Fatalf("first round wrote %v, want L0/1 alone (L0/3 after the gap of L0/2 let go)", written)
	}
	written = nil
	if _, err := h.shipOnce(ctx, r); err != nil {
		t.Fatal(err)
	}
	want := []key{{1, 1, 2}, {0, 3, 3}}
	if len(written) != 2 || written[0] != want[0] || written[1] != want[1] {
		t.Fatalf("second round wrote %v, want %v", written, want)
	}
}

// ltxHeader is an LTX file's header alone: enough for the stage, which reads only that.
func ltxHeader(t *testing.T, lo, hi ltx.TXID) []byte {
	t.Helper()
	hdr := ltx.Header{Version: ltx.Version, PageSize: 4096, Commit: 1, MinTXID: lo, MaxTXID: hi, Timestamp: time.Now().UnixMilli()}
	b, err := hdr.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// onWriteClient is a replica that takes every file and calls onWrite with its key.
type onWriteClient struct {
	litestream.ReplicaClient // any other call panics: the round must not make one
	onWrite                  func(key)
}

func (c *onWriteClient) WriteLTXFile(_ context.Context, level int, lo, hi ltx.TXID, r io.Reader) (*ltx.FileInfo, error) {
	n, err := io.Copy(io.Discard, r)
	if err != nil {
		return nil, err
	}
	c.onWrite(key{level, lo, hi})
	return &ltx.FileInfo{Level: level, MinTXID: lo, MaxTXID: hi, Size: n}, nil
}
