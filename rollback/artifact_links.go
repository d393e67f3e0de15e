package rollback

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ArtifactLinks makes the URLs agents fetch artifacts from. Each carries
// its own credential, good for one artifact, one push and a limited time:
// an agent never sends the deploy token to fetch, so a link seen on the
// wire (or in a proxy's log) neither deploys nor outlives the push.
type ArtifactLinks struct {
	// Base is the coordinator's address as agents reach it.
	Base string
	// TTL is how long a link is good for.
	TTL time.Duration
	key []byte
	now func() time.Time
}

// DefaultArtifactLinkTTL covers a phase's deploys with their retries.
const DefaultArtifactLinkTTL = time.Hour

// NewArtifactLinks makes links under base with a fresh random key: a
// restarted coordinator makes new links for the deploys it sends again.
func NewArtifactLinks(base string, ttl time.Duration) *ArtifactLinks {
	key := make([]byte, 32)
	rand.Read(key)
	if ttl <= 0 {
		ttl = DefaultArtifactLinkTTL
	}
	return &ArtifactLinks{Base: strings.TrimRight(base, "/"), TTL: ttl, key: key, now: time.Now}
}

// URL is a link to the artifact sum for push (any name for a deploy not
// part of a push), good for TTL from now.
func (l *ArtifactLinks) URL(push, sum string) string {
	exp := strconv.FormatInt(l.now().Add(l.TTL).Unix(), 10)
	q := url.Values{"push": {push}, "expires": {exp}, "sig": {l.sign(sum, push, exp)}}
	return l.Base + "/api/v1/artifacts/" + sum + "?" + q.Encode()
}

func (l *ArtifactLinks) sign(sum, push, exp string) string {
	m := hmac.New(sha256.New, l.key)
	fmt.Fprintf(m, "%s\n%s\n%s", sum, push, exp)
	return hex.EncodeToString(m.Sum(nil))
}

// ErrLinkExpired is a link past its time.
var ErrLinkExpired = errors.New("the artifact link expired: the coordinator makes a new one for each deploy it sends")

// Check tells whether q, a link's query, grants the artifact sum.
func (l *ArtifactLinks) Check(sum string, q url.Values) error {
	push, exp, sig := q.Get("push"), q.Get("expires"), q.Get("sig")
	if sig == "" {
		return errors.New("no credential: fetch the link the coordinator sent with the deploy")
	}
	if !hmac.Equal([]byte(sig), []byte(l.sign(sum, push, exp))) {
		return errors.New("the artifact link's signature does not match this artifact")
	}
	until, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || l.now().Unix() > until {
		return ErrLinkExpired
	}
	return nil
}
