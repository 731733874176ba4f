package proxy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// tcpSocketOwner asks the kernel (NETLINK_SOCK_DIAG, exact lookup, no
// dump) for the uid and inode of the TCP socket whose local address is
// local and whose peer is remote. This costs one round trip to the kernel
// however many sockets exist, where /proc/net/tcp is a linear scan.
func tcpSocketOwner(local, remote netip.AddrPort) (uid int, inode uint64, err error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return 0, 0, fmt.Errorf("sock_diag socket: %w", err)
	}
	defer unix.Close(fd)
	tv := unix.NsecToTimeval(int64(time.Second))
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, 0, fmt.Errorf("sock_diag bind: %w", err)
	}
	families := []uint8{unix.AF_INET6}
	if local.Addr().Unmap().Is4() {
		// An IPv4 client may also sit on a dual-stack IPv6 socket.
		families = []uint8{unix.AF_INET, unix.AF_INET6}
	}
	for _, fam := range families {
		uid, inode, err = sockDiagQuery(fd, fam, local, remote)
		if err == nil {
			return uid, inode, nil
		}
	}
	return 0, 0, err
}

func diagAddr(fam uint8, a netip.Addr) [16]byte {
	var out [16]byte
	a = a.Unmap()
	if fam == unix.AF_INET && a.Is4() {
		v := a.As4()
		copy(out[:], v[:])
		return out
	}
	return netip.AddrFrom16(a.As16()).As16()
}

func sockDiagQuery(fd int, fam uint8, local, remote netip.AddrPort) (int, uint64, error) {
	const (
		hdrLen = unix.SizeofNlMsghdr
		reqLen = 56 // struct inet_diag_req_v2
	)
	msg := make([]byte, hdrLen+reqLen)
	ne := binary.NativeEndian
	ne.PutUint32(msg[0:], uint32(len(msg)))
	ne.PutUint16(msg[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(msg[6:], unix.NLM_F_REQUEST)
	ne.PutUint32(msg[8:], 1)
	req := msg[hdrLen:]
	req[0] = fam
	req[1] = unix.IPPROTO_TCP
	ne.PutUint32(req[4:], 0xffffffff) // all states
	id := req[8:]                     // struct inet_diag_sockid
	binary.BigEndian.PutUint16(id[0:], local.Port())
	binary.BigEndian.PutUint16(id[2:], remote.Port())
	src, dst := diagAddr(fam, local.Addr()), diagAddr(fam, remote.Addr())
	copy(id[4:20], src[:])
	copy(id[20:36], dst[:])
	ne.PutUint32(id[40:], 0xffffffff) // INET_DIAG_NOCOOKIE
	ne.PutUint32(id[44:], 0xffffffff)
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, 0, fmt.Errorf("sock_diag send: %w", err)
	}
	buf := make([]byte, 8192)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		return 0, 0, fmt.Errorf("sock_diag receive: %w", err)
	}
	for b := buf[:n]; len(b) >= hdrLen; {
		mlen := int(ne.Uint32(b[0:]))
		typ := ne.Uint16(b[4:])
		if mlen < hdrLen || mlen > len(b) {
			return 0, 0, errors.New("sock_diag: malformed reply")
		}
		data := b[hdrLen:mlen]
		switch typ {
		case unix.NLMSG_ERROR:
			if len(data) >= 4 {
				if code := int32(ne.Uint32(data)); code != 0 {
					return 0, 0, fmt.Errorf("sock_diag: %w", unix.Errno(-code))
				}
			}
		case unix.SOCK_DIAG_BY_FAMILY:
			// struct inet_diag_msg: 4 bytes, sockid (48), expires,
			// rqueue, wqueue, uid, inode.
			if len(data) < 72 {
				return 0, 0, errors.New("sock_diag: short reply")
			}
			return int(ne.Uint32(data[64:])), uint64(ne.Uint32(data[68:])), nil
		}
		b = b[min((mlen+3)&^3, len(b)):]
	}
	return 0, 0, errors.New("sock_diag: no answer")
}
