//go:build !linux

package proxy

import (
	"net/netip"

	"github.com/oisp/oisp-sensor/sensor/flow"
)

// procFinder is Linux-only; elsewhere the proxy cannot tell which process
// opened a connection.
type procFinder struct{}

func (*procFinder) lookup(string, netip.AddrPort, netip.AddrPort) (flow.Process, bool) {
	return flow.Process{UID: -1}, false
}
