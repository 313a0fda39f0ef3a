package objectlock

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"time"

	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	"golang.org/x/sync/singleflight"
	"k8s.io/utils/clock"
)

// errorTTL is how long a failed check is reused at most: a location that
// could not be read is tried again soon, without a call on every reconcile.
const errorTTL = time.Minute

// checkFunc is Check, replaceable in tests.
type checkFunc func(ctx context.Context, t Target, c Credentials, ttl time.Duration) (Verdict, error)

// Checker reuses verdicts so that the manager does not call S3 on every
// reconcile: a verdict for the same bucket (reached the same way), the same
// credentials and the same ttl is reused for the Checker's ttl, an error for
// a minute at most. Concurrent checks of the same key share one call. It is
// safe for concurrent use.
type Checker struct {
	clock    clock.PassiveClock
	ttl      time.Duration
	errorTTL time.Duration
	check    checkFunc
	calls    singleflight.Group

	mu      sync.Mutex
	entries map[string]entry
}

// entry is a cached answer.
type entry struct {
	verdict Verdict
	err     error
	expires time.Time
}

// NewChecker returns a Checker that reuses a verdict for ttl (such as ten
// minutes), reading the time from clk.
func NewChecker(clk clock.PassiveClock, ttl time.Duration) *Checker {
	return &Checker{clock: clk, ttl: ttl, errorTTL: min(errorTTL, ttl), check: Check, entries: map[string]entry{}}
}

// Check judges the bucket of bsl for backups kept for ttl, as the package's
// Check does, reusing an answer given recently for the same location,
// credentials and ttl. A location that cannot be checked (not the AWS
// provider, no bucket) is an error without a call.
func (c *Checker) Check(ctx context.Context, bsl *velerov1.BackupStorageLocation, creds Credentials, ttl time.Duration) (Verdict, error) {
	target, err := TargetOf(bsl)
	if err != nil {
		return Verdict{}, err
	}
	// Keyed by what is checked, not by the location's generation: Velero's
	// CRDs have no status subresource, so each validation of the location
	// (every minute by default) bumps its generation.
	key := fmt.Sprintf("%x/%s/%d", sha256.Sum256(fmt.Appendf(nil, "%+v", target)), creds.fingerprint(), ttl)
	if e, ok := c.lookup(key); ok {
		return e.verdict, e.err
	}
	got, _, _ := c.calls.Do(key, func() (any, error) {
		// A caller that waited here for another's call finds its answer.
		if e, ok := c.lookup(key); ok {
			return e, nil
		}
		verdict, err := c.check(ctx, target, creds, ttl)
		e := entry{verdict: verdict, err: err, expires: c.clock.Now().Add(c.ttl)}
		if err != nil {
			e.expires = c.clock.Now().Add(c.errorTTL)
		}
		// A check cut short by its caller says nothing about the bucket.
		if ctx.Err() == nil {
			c.store(key, e)
		}
		return e, nil
	})
	e := got.(entry)
	return e.verdict, e.err
}

// lookup returns the unexpired entry for key.
func (c *Checker) lookup(key string) (entry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || !c.clock.Now().Before(e.expires) {
		return entry{}, false
	}
	return e, true
}

// store keeps e under key and forgets expired entries, such as those of a
// location's earlier generations.
func (c *Checker) store(key string, e entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock.Now()
	for k, old := range c.entries {
		if !now.Before(old.expires) {
			delete(c.entries, k)
		}
	}
	c.entries[key] = e
}
