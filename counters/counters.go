// Package counters counts events in memcached, one key per counter per
// minute, so that any number of processes (Go or PHP) can count the same
// thing without coordination, and check_counter can judge the last minutes.
//
// The key scheme, shared with the PHP snippet in README.md:
//
//	<prefix><name>:<unix minute>    e.g. immune:c:orders:29473821
//
// where the unix minute is floor(unix seconds / 60) and each key expires
// TTL after it was created (2 h by default).
package counters

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
)

const (
	// DefaultPrefix starts every counter key.
	DefaultPrefix = "immune:c:"
	// DefaultTTL is how long a minute's key lives: long enough for a
	// reader to look two hours back.
	DefaultTTL = 2 * time.Hour
	// MaxTTL is the longest TTL memcached takes as relative: larger
	// expirations are read as absolute unix times.
	MaxTTL = 30 * 24 * time.Hour

	// maxKeyLen is memcached's limit on a key's length.
	maxKeyLen = 250
	// minuteDigits is room for the unix minute: ten digits last until
	// the year 20983.
	minuteDigits = 10
	// createAttempts bounds the incr/add loop: each lost race means the
	// key exists, so a second incr succeeds unless the key vanishes again
	// in between (evicted at once, or a flush), which should not repeat.
	createAttempts = 5

	// DefaultTimeout and DefaultMaxIdleConns are NewClient's settings: an
	// increment is one loopback round trip, and a busy app increments from
	// many goroutines at once, each needing a connection of its own.
	DefaultTimeout      = 250 * time.Millisecond
	DefaultMaxIdleConns = 128
)

// NewClient returns a gomemcache client for counting: a connection pool
// for many goroutines and short timeouts, so that counting never holds up
// the work being counted for long. Give it one server: a PHP app's client
// picks among several servers by another hash than gomemcache's.
func NewClient(server string) (*memcache.Client, error) {
	var ss memcache.ServerList
	if err := ss.SetServers(server); err != nil {
		return nil, fmt.Errorf("memcached server %q: %w", server, err)
	}
	mc := memcache.NewFromSelector(&ss)
	mc.Timeout = DefaultTimeout
	mc.MaxIdleConns = DefaultMaxIdleConns
	return mc, nil
}

// Options configure Counters; the zero value uses the defaults.
type Options struct {
	// Prefix starts every key (default DefaultPrefix). A reader must use
	// the writers' prefix.
	Prefix string
	// TTL is how long a minute's key lives (default DefaultTTL, at most MaxTTL).
	TTL time.Duration
	// Now is the clock that picks the minute an increment counts in
	// (default time.Now); tests set it.
	Now func() time.Time
}

// Counters counts named events in memcached, in one-minute buckets.
// It is safe for concurrent use.
type Counters struct {
	mc     *memcache.Client
	prefix string
	ttl    int32 // seconds
	now    func() time.Time
}

// New returns Counters that store through client.
func New(client *memcache.Client, opts Options) (*Counters, error) {
	if client == nil {
		return nil, errors.New("counters: no memcache client")
	}
	c := &Counters{mc: client, prefix: opts.Prefix, now: opts.Now}
	if c.prefix == "" {
		c.prefix = DefaultPrefix
	}
	if err := checkKeyText(c.prefix); err != nil {
		return nil, fmt.Errorf("counters: prefix %q: %w", c.prefix, err)
	}
	if maxKeyLen-len(c.prefix)-1-minuteDigits < 1 {
		return nil, fmt.Errorf("counters: prefix %q leaves no room for a name in a %d-byte key", c.prefix, maxKeyLen)
	}
	ttl := opts.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	if ttl < time.Second || ttl > MaxTTL {
		return nil, fmt.Errorf("counters: TTL %v is not between 1s and %v", opts.TTL, MaxTTL)
	}
	c.ttl = int32(ttl / time.Second)
	if c.now == nil {
		c.now = time.Now
	}
	return c, nil
}

// MaxNameLen is the longest name the default prefix leaves room for.
const MaxNameLen = maxKeyLen - len(DefaultPrefix) - 1 - minuteDigits

// ValidName reports whether name can be a counter's name under the
// default prefix: memcached keys hold no spaces or control characters, and
// the whole key must fit in 250 bytes.
func ValidName(name string) error { return validName(name, MaxNameLen) }

func validName(name string, maxLen int) error {
	if name == "" {
		return errors.New("empty counter name")
	}
	if len(name) > maxLen {
		return fmt.Errorf("counter name of %d bytes, at most %d", len(name), maxLen)
	}
	if err := checkKeyText(name); err != nil {
		return fmt.Errorf("counter name %q: %w", name, err)
	}
	return nil
}

// checkKeyText refuses what memcached's text protocol cannot carry in a key.
func checkKeyText(s string) error {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] == 0x7f {
			return fmt.Errorf("byte %d is a space or control character", i)
		}
	}
	return nil
}

// Minute is the unix minute t falls in: the bucket it counts in.
func Minute(t time.Time) int64 {
	sec := t.Unix()
	m := sec / 60
	if sec%60 < 0 {
		m--
	}
	return m
}

// Key is the memcached key of a counter's bucket for one unix minute.
func (c *Counters) Key(name string, minute int64) (string, error) {
	if err := validName(name, maxKeyLen-len(c.prefix)-1-minuteDigits); err != nil {
		return "", err
	}
	return c.prefix + name + ":" + strconv.FormatInt(minute, 10), nil
}

// Incr counts one event of name in the current minute.
func (c *Counters) Incr(ctx context.Context, name string) error {
	return c.IncrBy(ctx, name, 1)
}

// IncrBy counts n events of name in the current minute. memcached's incr
// does not create a missing key, so a miss adds the key with n; when
// another writer adds it first, the add fails and incr runs again, so no
// count is lost. ctx is checked before each round trip; a round trip
// itself is bounded by the client's Timeout, as gomemcache takes no
// context.
func (c *Counters) IncrBy(ctx context.Context, name string, n uint64) error {
	key, err := c.Key(name, Minute(c.now()))
	if err != nil {
		return err
	}
	for range createAttempts {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("increment %s: %w", key, err)
		}
		_, err := c.mc.Increment(key, n)
		if err == nil {
			return nil
		}
		if !errors.Is(err, memcache.ErrCacheMiss) {
			return fmt.Errorf("increment %s: %w", key, err)
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("create %s: %w", key, err)
		}
		err = c.mc.Add(&memcache.Item{Key: key, Value: []byte(strconv.FormatUint(n, 10)), Expiration: c.ttl})
		if err == nil {
			return nil
		}
		if !errors.Is(err, memcache.ErrNotStored) {
			return fmt.Errorf("create %s: %w", key, err)
		}
	}
	return fmt.Errorf("increment %s: the key vanished after each of %d creations (evictions or flushes?)", key, createAttempts)
}

// Set makes name's count in the current minute value, replacing whatever
// was counted there: for importing counts kept elsewhere, and for tests.
func (c *Counters) Set(ctx context.Context, name string, value uint64) error {
	key, err := c.Key(name, Minute(c.now()))
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("set %s: %w", key, err)
	}
	if err := c.mc.Set(&memcache.Item{Key: key, Value: []byte(strconv.FormatUint(value, 10)), Expiration: c.ttl}); err != nil {
		return fmt.Errorf("set %s: %w", key, err)
	}
	return nil
}

// Bucket is one minute of a counter.
type Bucket struct {
	// Minute is the unix minute (Minute(t)); Start gives it as a time.
	Minute int64
	Count  uint64
	// Present is whether memcached held a key for the minute. A minute
	// nobody counted in has no key, just like one memcached lost.
	Present bool
}

// Start is the first instant of the bucket's minute.
func (b Bucket) Start() time.Time { return time.Unix(b.Minute*60, 0) }

// Reading is a counter's last complete minutes and the current one.
type Reading struct {
	Name string
	// Complete are the whole minutes before the current one, oldest first.
	Complete []Bucket
	// Current is the minute now falls in, still filling.
	Current Bucket
}

// Total sums the counts of the buckets given.
func Total(buckets ...Bucket) uint64 {
	var sum uint64
	for _, b := range buckets {
		sum += b.Count
	}
	return sum
}

// AnyPresent reports whether any of the buckets has a key in memcached.
func AnyPresent(buckets ...Bucket) bool {
	for _, b := range buckets {
		if b.Present {
			return true
		}
	}
	return false
}

// Read fetches the given number of complete minutes before now and the
// current minute, all in one round trip (one GetMulti).
func (c *Counters) Read(ctx context.Context, name string, buckets int, now time.Time) (Reading, error) {
	if buckets < 1 {
		return Reading{}, fmt.Errorf("read counter %s: %d buckets, want at least 1", name, buckets)
	}
	current := Minute(now)
	r := Reading{Name: name, Complete: make([]Bucket, buckets), Current: Bucket{Minute: current}}
	keys := make([]string, 0, buckets+1)
	for i := range r.Complete {
		r.Complete[i].Minute = current - int64(buckets-i)
	}
	for _, b := range append(r.Complete, r.Current) {
		key, err := c.Key(name, b.Minute)
		if err != nil {
			return Reading{}, err
		}
		keys = append(keys, key)
	}
	if err := ctx.Err(); err != nil {
		return Reading{}, fmt.Errorf("read counter %s: %w", name, err)
	}
	items, err := c.mc.GetMulti(keys)
	if err != nil {
		return Reading{}, fmt.Errorf("read counter %s: %w", name, err)
	}
	fill := func(b *Bucket, key string) error {
		it, ok := items[key]
		if !ok {
			return nil
		}
		// memcached may pad a decremented number with spaces.
		n, err := strconv.ParseUint(strings.TrimSpace(string(it.Value)), 10, 64)
		if err != nil {
			return fmt.Errorf("read counter %s: key %s holds %q, not a count", name, key, truncate(it.Value, 40))
		}
		b.Count, b.Present = n, true
		return nil
	}
	for i := range r.Complete {
		if err := fill(&r.Complete[i], keys[i]); err != nil {
			return Reading{}, err
		}
	}
	if err := fill(&r.Current, keys[buckets]); err != nil {
		return Reading{}, err
	}
	return r, nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}
