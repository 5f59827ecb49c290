package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/payswitch/payswitch/api"
	"github.com/payswitch/payswitch/callback"
	"github.com/payswitch/payswitch/config"
)

// callbackServer is a listener of the gateway callbacks' own (ussd.callbacks.listen or
// ivr.callbacks.listen), so that the gateways' network need not reach the API.
type callbackServer struct {
	addr  string   // where it listens, with the port it got
	paths []string // what it serves: /ussd, /ivr or both
	http  *http.Server
}

// mountCallbacks puts POST /ussd and POST /ivr behind their guards: on the API's server
// srv, or, for a callback whose config names a listener, on that listener only. Two
// callbacks that name the same address share one listener.
func (a *app) mountCallbacks(srv *api.Server, ussdHandler, ivrHandler http.Handler) error {
	type own struct {
		key   string // config key, for errors
		mux   *http.ServeMux
		paths []string
	}
	byAddr := map[string]*own{}
	var order []string
	for _, cb := range []struct {
		channel, path string
		cfg           config.Callbacks
		h             http.Handler
	}{
		{"ussd", "/ussd", a.cfg.USSD.Callbacks, ussdHandler},
		{"ivr", "/ivr", a.cfg.IVR.Callbacks, ivrHandler},
	} {
		g, err := callback.New(callback.Config{Channel: cb.channel, Allow: cb.cfg.Allow, Secret: cb.cfg.Secret,
			Log: a.log, Registry: a.registry})
		if err != nil {
			return fmt.Errorf("config: %s.callbacks: %w", cb.channel, err)
		}
		h := g.Wrap(cb.h)
		if cb.cfg.Listen == "" {
			srv.Handle("POST "+cb.path, h)
			continue
		}
		o := byAddr[cb.cfg.Listen]
		if o == nil {
			o = &own{key: cb.channel + ".callbacks.listen", mux: http.NewServeMux()}
			byAddr[cb.cfg.Listen] = o
			order = append(order, cb.cfg.Listen)
		}
		o.mux.Handle("POST "+cb.path, srv.Wrap(cb.path, h))
		o.paths = append(o.paths, cb.path)
	}
	for _, addr := range order {
		o := byAddr[addr]
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("%s: listen %s: %w", o.key, addr, err)
		}
		cs := &callbackServer{addr: ln.Addr().String(), paths: o.paths, http: newHTTPServer(a.cfg, o.mux)}
		a.callbacks = append(a.callbacks, cs)
		a.loop(func() {
			if err := cs.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				a.log.Error().Err(err).Str("addr", cs.addr).Msg("callback server stopped")
			}
		})
		a.log.Info().Str("addr", cs.addr).Strs("paths", cs.paths).Msg("gateway callbacks listening")
	}
	return nil
}

// callbackAddr is the address of the callback listener that serves path, or "" when
// the API's listener does.
func (a *app) callbackAddr(path string) string {
	for _, cs := range a.callbacks {
		for _, p := range cs.paths {
			if p == path {
				return cs.addr
			}
		}
	}
	return ""
}

// newHTTPServer is an HTTP server with the API's limits, for the API and the callback
// listeners alike: a gateway's slow or oversized request is held to the same bounds.
func newHTTPServer(cfg *config.Config, h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout: cfg.HTTP.ReadTimeout, WriteTimeout: cfg.HTTP.WriteTimeout, IdleTimeout: time.Minute,
		MaxHeaderBytes: 16 << 10}
}

// shutdownHTTP stops the API's and the callbacks' servers taking requests and waits
// (a bounded time) for those in flight, all at once so that one slow request does not
// hold up the others' shutdown.
func (a *app) shutdownHTTP() error {
	servers := make([]*http.Server, 0, 1+len(a.callbacks))
	if a.http != nil {
		servers = append(servers, a.http)
	}
	for _, cs := range a.callbacks {
		servers = append(servers, cs.http)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errs := make(chan error, len(servers))
	for _, s := range servers {
		go func() { errs <- s.Shutdown(ctx) }()
	}
	var all []error
	for range servers {
		all = append(all, <-errs)
	}
	return errors.Join(all...)
}
