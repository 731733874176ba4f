package socket

import "golang.org/x/sys/unix"

// peerCred uses LOCAL_PEERCRED (what getpeereid wraps) for the uid and
// LOCAL_PEERPID for the pid.
func peerCred(fd int) (PeerCred, error) {
	x, err := unix.GetsockoptXucred(fd, unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	if err != nil {
		return PeerCred{}, err
	}
	cred := PeerCred{UID: int(x.Uid)}
	if x.Ngroups > 0 {
		cred.GID = int(x.Groups[0])
	}
	if pid, err := unix.GetsockoptInt(fd, unix.SOL_LOCAL, unix.LOCAL_PEERPID); err == nil {
		cred.PID = pid
	}
	return cred, nil
}
