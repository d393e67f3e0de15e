package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/immune-ops/immune/conf"
)

// answerMax bounds what is read of a webhook's answer: a line of it goes
// into the error, the rest is read so the connection can be used again.
const answerMax = 64 << 10

// webhook POSTs each event's JSON to a URL.
type webhook struct {
	url    string
	label  string
	token  string
	client *http.Client
}

func newWebhook(cfg conf.Webhook, i int) (*webhook, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("notify.webhooks[%d].url: %q is not a URL", i, cfg.URL)
	}
	w := &webhook{
		url: cfg.URL,
		// The path and query stay out of logs: chat webhooks keep their
		// secret there.
		label: fmt.Sprintf("webhooks[%d] %s://%s", i, u.Scheme, u.Host),
		client: &http.Client{
			// A redirect would turn the POST into a GET, or carry the
			// token to another host: the URL is to be fixed instead.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	if cfg.TokenFile != "" {
		if w.token, err = conf.ReadToken(fmt.Sprintf("notify.webhooks[%d].token_file", i), cfg.TokenFile); err != nil {
			return nil, err
		}
	}
	return w, nil
}

func (w *webhook) name() string { return w.label }

func (w *webhook) send(ctx context.Context, ev *Event, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return permanentError{fmt.Errorf("POST: %w", err)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "immune-coordinator")
	req.Header.Set("Idempotency-Key", ev.ID)
	if w.token != "" {
		req.Header.Set("Authorization", "Bearer "+w.token)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		// url.Error names the whole URL, secret path and all.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return fmt.Errorf("POST: %w", err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, answerMax))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	err = fmt.Errorf("answered %s%s", resp.Status, firstLine(answer))
	switch code := resp.StatusCode; {
	case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests, code >= 500:
		if after, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			return laterError{error: err, after: after}
		}
		return err
	case code >= 300 && code < 400:
		return permanentError{fmt.Errorf("%w: redirected to %s; give the URL it redirects to", err, resp.Header.Get("Location"))}
	}
	return permanentError{err}
}

// firstLine is ": " and the first line of a webhook's answer, if any,
// bounded: what a receiver says of why it refused.
func firstLine(answer []byte) string {
	line, _, _ := strings.Cut(strings.TrimSpace(string(answer)), "\n")
	if line == "" {
		return ""
	}
	if len(line) > 200 {
		line = line[:200] + "..."
	}
	return ": " + line
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}
