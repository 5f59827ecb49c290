package replica

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/superfly/ltx"
)

// rebuild makes the stage when there is none: on the first start, the first start
// after an upgrade from a single replica, or on a new disk after a restore. The
// replicas are listed, and the files of the most current one (the highest
// transaction) become what every replica is to hold; Litestream goes on from there.
//
// A replica that cannot be listed now does not hold the others back. It is compared
// when it can be listed: one that holds nothing beyond the adopted replica's last
// transaction is caught up as any other; one that holds more is a history the
// switch did not go on from, and writing this one's files over it would mix the two
// (same names, other contents), so it is never written and says why.
func (h *hub) rebuild(ctx context.Context) error {
	listings := make([][]*ltx.FileInfo, len(h.targets))
	listErrs := make([]error, len(h.targets))
	var wg sync.WaitGroup
	for i, t := range h.targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lctx, cancel := context.WithTimeout(ctx, rebuildListTimeout)
			defer cancel()
			listings[i], listErrs[i] = listAll(lctx, t.client)
		}()
	}
	wg.Wait()
	var errs []error
	best, listed := -1, 0
	var bestTXID ltx.TXID
	for i, t := range h.targets {
		if listErrs[i] != nil {
			listings[i] = nil
			errs = append(errs, fmt.Errorf("replica %s: %w", t.name, listErrs[i]))
			continue
		}
		listed++
		if top := topTXID(listings[i]); best < 0 || top > bestTXID {
			best, bestTXID = i, top
		}
	}
	if listed == 0 {
		return fmt.Errorf("replicas: no replica could be listed, and what they hold must be known before any is written: %w",
			errors.Join(errs...))
	}
	// Litestream's local files may go further than the adopted replica, and the ones
	// between may be gone (compacted into files of the lost stage); with none, it takes
	// a snapshot after the adopted replica's last transaction, and goes on from there.
	if err := h.resetLocal(); err != nil {
		return fmt.Errorf("replicas: reset Litestream's local state: %w", err)
	}
	unv := unverifiedState{TXID: bestTXID}
	for i, t := range h.targets {
		if listings[i] == nil {
			unv.Replicas = append(unv.Replicas, t.name)
		}
	}
	if err := h.stage.create(listings[best], unv); err != nil {
		return fmt.Errorf("replicas: create %s: %w", h.stage.dir, err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.version = 1
	h.files = make(map[key]*entry, len(listings[best]))
	for _, info := range listings[best] {
		h.files[keyOf(info)] = &entry{info: *info, version: h.version}
	}
	h.markUnverified(unv)
	for i, t := range h.targets {
		if listings[i] == nil {
			continue
		}
		t.has = h.heldFrom(listings[i])
	}
	ev := h.log.Info()
	if len(unv.Replicas) > 0 {
		ev = h.log.Warn().Strs("not_listed", unv.Replicas)
	}
	ev.Str("from", h.targets[best].name).Uint64("txid", uint64(bestTXID)).Int("files", len(h.files)).
		Msg("replicas: no local state; rebuilt it from the most current replica")
	return nil
}

// rebuildListTimeout bounds the listing of each replica when the stage is rebuilt: one
// that hangs is compared later, by its own loop, like one that cannot be reached.
const rebuildListTimeout = 30 * time.Second

func topTXID(infos []*ltx.FileInfo) ltx.TXID {
	var top ltx.TXID
	for _, info := range infos {
		top = max(top, info.MaxTXID)
	}
	return top
}

// unverifiedLeft is unverified.json as it stands. The caller holds mu.
func (h *hub) unverifiedLeft() unverifiedState {
	unv := unverifiedState{TXID: h.adoptedTXID}
	for _, t := range h.targets {
		if t.unverified {
			unv.Replicas = append(unv.Replicas, t.name)
		}
	}
	return unv
}

func refusal(top, adopted ltx.TXID, stageDir string) string {
	return fmt.Sprintf("not written: it holds transactions up to %d, beyond the %d of the replica the switch went on from "+
		"when it rebuilt its local state (%s), and writing it would mix two histories. If it holds payments the database "+
		"lacks, restore from it; either way, stop the switch, remove %s, and start it with every replica reachable",
		top, adopted, stageDir, stageDir)
}
