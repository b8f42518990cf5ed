package netfault

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// echoServer answers every line with the same line.
func echoServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return l.Addr().String()
}

// roundTrip sends a line and waits up to wait for its echo.
func roundTrip(c net.Conn, r *bufio.Reader, wait time.Duration) error {
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return err
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	line, err := r.ReadString('\n')
	if err == nil && line != "ping\n" {
		return errors.New("echo garbled: " + line)
	}
	return err
}

func dial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

func TestCutAndHeal(t *testing.T) {
	link, err := Listen("echo", echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer link.Close()

	before, beforeR := dial(t, link.Addr())
	if err := roundTrip(before, beforeR, 5*time.Second); err != nil {
		t.Fatalf("through the intact link: %v", err)
	}

	if err := link.Cut(); err != nil {
		t.Fatal(err)
	}
	// The partition is a black hole: no answer and no error, on the open connection and on a new
	// one. Absence can only be observed for a while; 300 ms is far beyond a loopback echo.
	if err := roundTrip(before, beforeR, 300*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("open connection through the cut link: %v, want a timeout", err)
	}
	during, duringR := dial(t, link.Addr())
	if err := roundTrip(during, duringR, 300*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("new connection through the cut link: %v, want a timeout", err)
	}

	if err := link.Heal(); err != nil {
		t.Fatal(err)
	}
	after, afterR := dial(t, link.Addr())
	if err := roundTrip(after, afterR, 5*time.Second); err != nil {
		t.Fatalf("through the healed link: %v", err)
	}
	if err := link.Heal(); err != nil {
		t.Fatalf("healing twice: %v", err)
	}
}
