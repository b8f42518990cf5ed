// Package netfault cuts a process off from a TCP server while both keep running, as a network
// partition does. A Link is a TCP proxy (toxiproxy, in-process) on a loopback port that a client
// is pointed at instead of the server. Cut makes the link a black hole: established connections
// stay open but no byte passes either way, and new connections are accepted but never answered,
// which is how a partition looks to the client (requests hang, no error arrives). Heal lets bytes
// pass again; connections that lost bytes meanwhile break, and clients reconnect.
package netfault

import (
	"context"
	"fmt"
	"strings"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Link is a proxy between a client and one upstream TCP address.
type Link struct {
	proxy *toxiproxy.Proxy
	cut   bool
}

// blackHoles are the toxics that make up a partition: toxiproxy's timeout toxic with timeout 0
// drops every byte and never closes the connection, once per direction.
var blackHoles = map[string]string{
	"partition-down": `{"name":"partition-down","type":"timeout","stream":"downstream","attributes":{"timeout":0}}`,
	"partition-up":   `{"name":"partition-up","type":"timeout","stream":"upstream","attributes":{"timeout":0}}`,
}

// Listen starts a link to upstream (host:port) on a free loopback port.
func Listen(name, upstream string) (*Link, error) {
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	p := toxiproxy.NewProxy(srv, name, "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		return nil, fmt.Errorf("netfault: listen for %s: %w", name, err)
	}
	return &Link{proxy: p}, nil
}

// Addr is the address clients dial instead of the upstream's.
func (l *Link) Addr() string { return l.proxy.Listen }

// Cut partitions the link. Cutting a cut link does nothing.
func (l *Link) Cut() error {
	if l.cut {
		return nil
	}
	for _, spec := range blackHoles {
		if _, err := l.proxy.Toxics.AddToxicJson(strings.NewReader(spec)); err != nil {
			return fmt.Errorf("netfault: cut %s: %w", l.proxy.Name, err)
		}
	}
	l.cut = true
	return nil
}

// Heal ends a partition. Healing an intact link does nothing.
func (l *Link) Heal() error {
	if !l.cut {
		return nil
	}
	for name := range blackHoles {
		if err := l.proxy.Toxics.RemoveToxic(context.Background(), name); err != nil {
			return fmt.Errorf("netfault: heal %s: %w", l.proxy.Name, err)
		}
	}
	l.cut = false
	return nil
}

// Close stops listening and closes every connection.
func (l *Link) Close() { l.proxy.Stop() }
