package netlimit

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestIdleConnectionsAreClosed: idle keep-alive connections are closed
// after Idle, and past MaxConns a connection waits for one to close.
func TestIdleConnectionsAreClosed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })}
	l := Limits{MaxConns: 2, ReadHeader: time.Second, Read: time.Second, Idle: 200 * time.Millisecond}
	go s.Serve(l.Apply(s, ln))
	t.Cleanup(func() { s.Close() })
	get := func(c net.Conn) error {
		c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			return err
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
	var conns []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		if err := get(c); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	// A third connection is not served while two are open...
	third, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	// ...until the idle ones are closed by the server.
	if err := get(third); err != nil {
		t.Fatalf("third connection: %v", err)
	}
	if waited := time.Since(began); waited < 100*time.Millisecond {
		t.Errorf("the third connection was served at once (%s), past MaxConns", waited)
	}
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Errorf("idle connection still open: %v", err)
		}
	}
}
