package checks

import (
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/immune-ops/immune/nagios"
)

// redirForms are the Location forms the twin understands, tried in its
// order (RFC 2396 characters; a port of up to 6 digits so that overflow
// shows). They are compiled on the first redirect: the {1,255} repetitions
// make large programs, and compiling them at start-up would slow every
// plugin run of every check.
var redirForms = sync.OnceValue(func() (f struct{ absPortPath, absPath, absPort, abs, netPath, path *regexp.Regexp }) {
	f.absPortPath = regexp.MustCompile(`^([HTPShtps]{1,5})://([-.a-zA-Z0-9]{1,255}):([0-9]{1,6})/([-_.!~*'();/?:@&=+$,%#a-zA-Z0-9]+)`)
	f.absPath = regexp.MustCompile(`^([HTPShtps]{1,5})://([-.a-zA-Z0-9]{1,255})/([-_.!~*'();/?:@&=+$,%#a-zA-Z0-9]+)`)
	f.absPort = regexp.MustCompile(`^([HTPShtps]{1,5})://([-.a-zA-Z0-9]{1,255}):([0-9]{1,6})`)
	f.abs = regexp.MustCompile(`^([HTPShtps]{1,5})://([-.a-zA-Z0-9]{1,255})`)
	f.netPath = regexp.MustCompile(`^//([-.a-zA-Z0-9]{1,255})/([-_.!~*'();/?:@&=+$,%#a-zA-Z0-9]+)`)
	f.path = regexp.MustCompile(`^([-_.!~*'();/?:@&=+$,%#a-zA-Z0-9]+)`)
	return f
})

func defaultHTTPPort(tls bool) int {
	if tls {
		return 443
	}
	return 80
}

func slashed(path string) string {
	if strings.HasPrefix(path, "/") {
		return path
	}
	return "/" + path
}

// redirect works out where a 3xx response sends the check, as the twin's
// redir() does, with its loop and depth limits.
func (c *httpCheck) redirect(t httpTarget, page *httpPage, depth int) (*httpTarget, nagios.Result) {
	values, ok := page.resp.Header["Location"]
	if !ok {
		return nil, nagios.Resultf(nagios.Unknown, "HTTP UNKNOWN - Could not find redirect location - %s", page.statusLine)
	}
	loc := strings.TrimLeft(values[0], " \t")
	if loc == "" {
		return nil, nagios.Resultf(nagios.Unknown, "HTTP UNKNOWN - Empty redirect location")
	}
	useTLS := t.tls
	var scheme, addr, url string
	var port int
	forms := redirForms()
	if m := forms.absPortPath.FindStringSubmatch(loc); m != nil {
		scheme, addr, url = m[1], m[2], slashed(m[4])
		port, _ = strconv.Atoi(m[3])
		useTLS = scheme == "https"
	} else if m := forms.absPath.FindStringSubmatch(loc); m != nil {
		scheme, addr, url = m[1], m[2], slashed(m[3])
		useTLS = scheme == "https"
		port = defaultHTTPPort(useTLS)
	} else if m := forms.absPort.FindStringSubmatch(loc); m != nil {
		scheme, addr, url = m[1], m[2], "/"
		port, _ = strconv.Atoi(m[3])
		useTLS = scheme == "https"
	} else if m := forms.abs.FindStringSubmatch(loc); m != nil {
		scheme, addr, url = m[1], m[2], "/"
		useTLS = scheme == "https"
		port = defaultHTTPPort(useTLS)
	} else if m := forms.netPath.FindStringSubmatch(loc); m != nil {
		scheme = t.scheme
		if useTLS {
			scheme = "https"
		}
		addr, url = m[1], "/"+m[2]
		useTLS = scheme == "https"
		port = defaultHTTPPort(useTLS)
	} else if m := forms.path.FindStringSubmatch(loc); m != nil {
		url = m[1]
		if !strings.HasPrefix(url, "/") {
			// The twin cuts its current URL at the last '/' in place, so the
			// loop test below compares against the cut URL.
			if i := strings.LastIndexByte(t.url, '/'); i >= 0 {
				t.url = t.url[:i]
			}
			url = t.url + "/" + url
		}
		scheme, port = t.scheme, t.port
		addr = t.hostName
		if addr == "" {
			addr = t.address
		}
	} else {
		return nil, nagios.Resultf(nagios.Unknown, "HTTP UNKNOWN - Could not parse redirect location - %s", loc)
	}

	if depth+1 > c.maxRedirs {
		return nil, nagios.Resultf(nagios.Warning, "HTTP WARNING - maximum redirection depth %d exceeded - %s://%s:%d%s",
			c.maxRedirs, scheme, addr, port, url)
	}
	if t.port == port && t.address == addr && t.hostName == addr && t.url == url {
		return nil, nagios.Resultf(nagios.Critical, "HTTP CRITICAL - redirection creates an infinite loop - %s://%s:%d%s",
			scheme, addr, port, url)
	}
	next := t
	next.scheme, next.hostName, next.url, next.tls = scheme, addr, url, useTLS
	if c.sticky&stickyHost == 0 {
		next.address = addr
	}
	if c.sticky&stickyPort == 0 {
		next.port = port
	}
	if next.port > 65535 {
		return nil, nagios.Resultf(nagios.Unknown, "HTTP UNKNOWN - Redirection to port above 65535 - %s://%s:%d%s",
			next.scheme, next.address, next.port, next.url)
	}
	next.virtualPort = next.port
	return &next, nagios.Result{}
}

// Redirect stickiness for -f sticky and stickyport.
const (
	stickyHost = 1 << iota
	stickyPort
)
