package replica

import (
	"context"
	"log/slog"

	"github.com/rs/zerolog"
)

// zerologHandler passes Litestream's log records (log/slog) to the switch's logger, so
// that they come out as the switch's other lines do. Litestream logs no credentials.
type zerologHandler struct {
	log   zerolog.Logger
	attrs []slog.Attr
	group string
}

func newSlog(log zerolog.Logger) *slog.Logger {
	return slog.New(&zerologHandler{log: log})
}

func (h *zerologHandler) Enabled(_ context.Context, l slog.Level) bool {
	return h.log.GetLevel() <= slogLevel(l)
}

func (h *zerologHandler) Handle(_ context.Context, r slog.Record) error {
	e := h.log.WithLevel(slogLevel(r.Level))
	add := func(a slog.Attr) bool {
		key := a.Key
		if h.group != "" {
			key = h.group + "." + key
		}
		e = e.Any(key, a.Value.Resolve().Any())
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	e.Msg("litestream: " + r.Message)
	return nil
}

func (h *zerologHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), attrs...)
	return &c
}

func (h *zerologHandler) WithGroup(name string) slog.Handler {
	c := *h
	if c.group != "" {
		name = c.group + "." + name
	}
	c.group = name
	return &c
}

// slogLevel maps slog's levels onto zerolog's. Litestream's own chatter (Info: every
// compaction, every snapshot) is debug here: the switch reports the replica's state
// itself, and its errors stay errors.
func slogLevel(l slog.Level) zerolog.Level {
	switch {
	case l >= slog.LevelError:
		return zerolog.ErrorLevel
	case l >= slog.LevelWarn:
		return zerolog.WarnLevel
	case l >= slog.LevelInfo:
		return zerolog.DebugLevel
	default:
		return zerolog.TraceLevel
	}
}
