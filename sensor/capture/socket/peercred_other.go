//go:build !linux && !darwin

package socket

import (
	"errors"
	"runtime"
)

func peerCred(int) (PeerCred, error) {
	return PeerCred{}, errors.New("peer credentials are not supported on " + runtime.GOOS)
}
