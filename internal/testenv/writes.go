package testenv

import (
	"net/http"
	"sync/atomic"

	"k8s.io/client-go/rest"
)

// WriteCounter counts the write requests (POST, PUT, PATCH, DELETE) sent
// through the configs it wraps, as the apiserver receives them: tests use it
// to show that a steady reconcile writes nothing.
type WriteCounter struct{ n atomic.Int64 }

// Wrap returns a copy of cfg whose requests are counted.
func (w *WriteCounter) Wrap(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			switch req.Method {
			case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
				w.n.Add(1)
			}
			return rt.RoundTrip(req)
		})
	}
	return c
}

// N is the number of writes so far.
func (w *WriteCounter) N() int64 { return w.n.Load() }

// Reset sets the count back to zero.
func (w *WriteCounter) Reset() { w.n.Store(0) }

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
