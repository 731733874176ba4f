//go:build !linux || !amd64

package linuxcompat

import (
	"context"
	"fmt"
	"runtime"

	"github.com/oisp/oisp-sensor/sensor/flow"
)

// Available reports false: the eBPF loader is built for linux/amd64 only.
func Available() bool { return false }

// Source is the eBPF capture source; on this platform it cannot be created.
type Source struct{}

// New returns ErrNotSupported on this platform.
func New(cfg Config) (*Source, error) {
	return nil, fmt.Errorf("%w on %s/%s", ErrNotSupported, runtime.GOOS, runtime.GOARCH)
}

// Run returns ErrNotSupported.
func (s *Source) Run(ctx context.Context, h flow.Handler) error { return ErrNotSupported }

// Ready returns a closed channel.
func (s *Source) Ready() <-chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// Attachments returns nothing.
func (s *Source) Attachments() []Attachment { return nil }

// Stats returns zero counters.
func (s *Source) Stats() Stats { return Stats{} }

// Features reports that the platform itself is unsupported.
func Features() []Feature {
	return []Feature{{Name: "platform", Required: true, Detail: runtime.GOOS + "/" + runtime.GOARCH + ": eBPF capture is linux/amd64 only"}}
}
