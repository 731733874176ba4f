package socket

import (
	"fmt"
	"net"
	"slices"
)

// PeerCred is what the kernel says about the process at the other end of a
// Unix socket. PID is 0 where the platform does not report it.
type PeerCred struct {
	UID int
	GID int
	PID int
}

// PeerCredentials asks the kernel who is connected on c.
func PeerCredentials(c *net.UnixConn) (PeerCred, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return PeerCred{}, fmt.Errorf("reading peer credentials: %w", err)
	}
	var (
		cred  PeerCred
		inner error
	)
	if err := raw.Control(func(fd uintptr) { cred, inner = peerCred(int(fd)) }); err != nil {
		return PeerCred{}, fmt.Errorf("reading peer credentials: %w", err)
	}
	if inner != nil {
		return PeerCred{}, fmt.Errorf("reading peer credentials: %w", inner)
	}
	return cred, nil
}

// CheckPeer accepts cred only if its uid is in allowed.
func CheckPeer(cred PeerCred, allowed []int) error {
	if slices.Contains(allowed, cred.UID) {
		return nil
	}
	return fmt.Errorf("peer uid %d (pid %d) is not allowed (allowed uids %v)", cred.UID, cred.PID, allowed)
}
