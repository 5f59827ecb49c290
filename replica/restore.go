package replica

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/benbjohnson/litestream"
)

// ErrNoBackup is Restore's answer for a replica that holds nothing to restore (at the
// time asked for, if one was).
var ErrNoBackup = errors.New("replica: nothing to restore there")

// Restored says what a restore rebuilt.
type Restored struct {
	// UpdatedAt is the time of the replica's newest file used, as Litestream recorded
	// it: the restored database holds every commit shipped by then.
	UpdatedAt time.Time
}

// Restore writes the database the replica holds into outPath, which must not exist:
// its latest state, or its state at the time at when at is not zero (as close as the
// replica's files allow, never after at). The caller checks what was written.
func Restore(ctx context.Context, cfg Config, outPath string, at time.Time) (Restored, error) {
	client, err := cfg.client()
	if err != nil {
		return Restored{}, err
	}
	if err := client.Init(ctx); err != nil {
		return Restored{}, fmt.Errorf("replica %s: %w", cfg.Name(), err)
	}
	r := litestream.NewReplicaWithClient(nil, client)
	opt := litestream.NewRestoreOptions()
	opt.OutputPath = outPath
	opt.Timestamp = at
	updated, err := r.CalcRestoreTarget(ctx, opt)
	if err != nil {
		return Restored{}, fmt.Errorf("replica %s: %w", cfg.Name(), err)
	}
	if updated.IsZero() {
		return Restored{}, fmt.Errorf("%w: %s holds no files", ErrNoBackup, cfg.Name())
	}
	if err := r.Restore(ctx, opt); err != nil {
		if errors.Is(err, litestream.ErrTxNotAvailable) || errors.Is(err, litestream.ErrNoSnapshots) {
			return Restored{}, fmt.Errorf("%w: %s: %w", ErrNoBackup, cfg.Name(), err)
		}
		return Restored{}, fmt.Errorf("replica %s: restore: %w", cfg.Name(), err)
	}
	if !at.IsZero() && updated.After(at) {
		updated = at
	}
	return Restored{UpdatedAt: updated}, nil
}
