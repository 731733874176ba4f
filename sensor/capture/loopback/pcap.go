package loopback

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"
)

// PcapNG writes a pcapng capture of client connections as they would
// appear on the loopback interface. Each wrapped TCP connection gets a
// three-way handshake, one segment per read or write (split at maxSegment)
// with consistent sequence and acknowledgement numbers, and FINs when it
// ends; each datagram of a wrapped UDP socket (a QUIC client's) is one
// frame.
// The frames carry the connection's real addresses and the real bytes that
// crossed it (the TLS records, for a TLS connection), so a dissector given
// the TLS key log (see Server.ClientTransport) can decrypt and read
// them without root or a packet capture library. Safe for concurrent use.
type PcapNG struct {
	mu      sync.Mutex
	w       io.Writer
	err     error
	ipID    uint16
	isn     uint32
	packets int
	ports   map[uint16]bool
}

// pcapng block types and the link type written (raw IP: each packet starts
// with an IPv4 or IPv6 header).
const (
	blockSectionHeader   = 0x0A0D0D0A
	blockInterface       = 0x00000001
	blockEnhancedPacket  = 0x00000006
	byteOrderMagic       = 0x1A2B3C4D
	linkTypeRaw          = 101
	pcapSnapLen          = 0 // no limit
	maxSegment           = 16384
	tcpFlagFIN           = 0x01
	tcpFlagSYN           = 0x02
	tcpFlagPSH           = 0x08
	tcpFlagACK           = 0x10
	tcpWindow            = 65535
	ipv4HeaderLen        = 20
	ipv6HeaderLen        = 40
	tcpHeaderLen         = 20
	protocolTCP          = 6
	protocolUDP          = 17
	udpHeaderLen         = 8
	initialSequenceStart = 0x10000000
)

// NewPcapNG writes the section header and one raw-IP interface to w and
// returns a writer for connection frames.
func NewPcapNG(w io.Writer) (*PcapNG, error) {
	p := &PcapNG{w: w, isn: initialSequenceStart, ports: map[uint16]bool{}}
	shb := make([]byte, 28)
	le := binary.LittleEndian
	le.PutUint32(shb[0:], blockSectionHeader)
	le.PutUint32(shb[4:], 28)
	le.PutUint32(shb[8:], byteOrderMagic)
	le.PutUint16(shb[12:], 1) // major
	le.PutUint16(shb[14:], 0) // minor
	le.PutUint64(shb[16:], 0xFFFFFFFFFFFFFFFF)
	le.PutUint32(shb[24:], 28)
	idb := make([]byte, 20)
	le.PutUint32(idb[0:], blockInterface)
	le.PutUint32(idb[4:], 20)
	le.PutUint16(idb[8:], linkTypeRaw)
	le.PutUint32(idb[12:], pcapSnapLen)
	le.PutUint32(idb[16:], 20)
	if _, err := w.Write(append(shb, idb...)); err != nil {
		return nil, fmt.Errorf("pcapng: write header: %w", err)
	}
	return p, nil
}

// Err returns the first write error, if any. Connections keep working when
// the capture fails; the capture just stops.
func (p *PcapNG) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Packets returns the number of packets written.
func (p *PcapNG) Packets() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.packets
}

// ServerPorts returns the server ports of every connection wrapped so far
// (dissectors need them to decode the traffic as TLS).
func (p *PcapNG) ServerPorts() []uint16 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]uint16, 0, len(p.ports))
	for port := range p.ports {
		out = append(out, port)
	}
	return out
}

// Conn wraps the client side of a TCP connection: writes are recorded as
// client→server segments, reads as server→client segments. The handshake
// is recorded at once.
func (p *PcapNG) Conn(c net.Conn) (net.Conn, error) {
	local, lok := c.LocalAddr().(*net.TCPAddr)
	remote, rok := c.RemoteAddr().(*net.TCPAddr)
	if !lok || !rok {
		return nil, errors.New("pcapng: not a TCP connection")
	}
	pc := &pcapConn{
		Conn:   c,
		p:      p,
		client: local.AddrPort(),
		server: remote.AddrPort(),
	}
	pc.client = netip.AddrPortFrom(pc.client.Addr().Unmap(), pc.client.Port())
	pc.server = netip.AddrPortFrom(pc.server.Addr().Unmap(), pc.server.Port())
	if pc.client.Addr().Is4() != pc.server.Addr().Is4() {
		return nil, errors.New("pcapng: mixed IPv4 and IPv6 addresses")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ports[pc.server.Port()] = true
	// Sequence numbers only need to be distinct per connection; spacing
	// them keeps a dissector from mistaking one connection for another.
	pc.clientSeq = p.isn
	pc.serverSeq = p.isn + 0x08000000
	p.isn += 0x01000000
	now := time.Now()
	p.segmentLocked(now, pc, true, tcpFlagSYN, nil)
	pc.clientSeq++
	p.segmentLocked(now, pc, false, tcpFlagSYN|tcpFlagACK, nil)
	pc.serverSeq++
	p.segmentLocked(now, pc, true, tcpFlagACK, nil)
	return pc, nil
}

type pcapConn struct {
	net.Conn
	p              *PcapNG
	client, server netip.AddrPort
	// Guarded by p.mu.
	clientSeq, serverSeq uint32
	clientFIN, serverFIN bool
}

func (c *pcapConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.p.data(c, false, b[:n])
	}
	if errors.Is(err, io.EOF) {
		c.p.fin(c, false)
	}
	return n, err
}

// Write records the segment before sending it: the peer's answer can be
// read (and recorded) before a Write returns, and a capture must show the
// request first.
func (c *pcapConn) Write(b []byte) (int, error) {
	if len(b) > 0 {
		c.p.data(c, true, b)
	}
	return c.Conn.Write(b)
}

func (c *pcapConn) Close() error {
	err := c.Conn.Close()
	c.p.fin(c, true)
	return err
}

func (p *PcapNG) data(c *pcapConn, fromClient bool, b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	for len(b) > 0 {
		n := min(len(b), maxSegment)
		p.segmentLocked(now, c, fromClient, tcpFlagPSH|tcpFlagACK, b[:n])
		if fromClient {
			c.clientSeq += uint32(n)
		} else {
			c.serverSeq += uint32(n)
		}
		b = b[n:]
	}
}

func (p *PcapNG) fin(c *pcapConn, fromClient bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if fromClient && c.clientFIN || !fromClient && c.serverFIN {
		return
	}
	p.segmentLocked(time.Now(), c, fromClient, tcpFlagFIN|tcpFlagACK, nil)
	if fromClient {
		c.clientFIN = true
		c.clientSeq++
	} else {
		c.serverFIN = true
		c.serverSeq++
	}
}

// segmentLocked writes one TCP segment as an enhanced packet block.
func (p *PcapNG) segmentLocked(at time.Time, c *pcapConn, fromClient bool, flags byte, payload []byte) {
	if p.err != nil {
		return
	}
	src, dst := c.client, c.server
	seq, ack := c.clientSeq, c.serverSeq
	if !fromClient {
		src, dst = dst, src
		seq, ack = ack, seq
	}
	if flags == tcpFlagSYN {
		ack = 0
	}
	pkt := p.packet(src, dst, seq, ack, flags, payload)
	p.err = p.writeEPB(at, pkt)
	p.packets++
}

func (p *PcapNG) packet(src, dst netip.AddrPort, seq, ack uint32, flags byte, payload []byte) []byte {
	be := binary.BigEndian
	seg := make([]byte, tcpHeaderLen+len(payload))
	be.PutUint16(seg[0:], src.Port())
	be.PutUint16(seg[2:], dst.Port())
	be.PutUint32(seg[4:], seq)
	be.PutUint32(seg[8:], ack)
	seg[12] = (tcpHeaderLen / 4) << 4
	seg[13] = flags
	be.PutUint16(seg[14:], tcpWindow)
	copy(seg[tcpHeaderLen:], payload)
	be.PutUint16(seg[16:], transportChecksum(src, dst, protocolTCP, seg))
	return p.ipPacket(src.Addr(), dst.Addr(), protocolTCP, seg)
}

// udpPacket builds one UDP datagram in an IP packet.
func (p *PcapNG) udpPacket(src, dst netip.AddrPort, payload []byte) []byte {
	be := binary.BigEndian
	dg := make([]byte, udpHeaderLen+len(payload))
	be.PutUint16(dg[0:], src.Port())
	be.PutUint16(dg[2:], dst.Port())
	be.PutUint16(dg[4:], uint16(len(dg)))
	copy(dg[udpHeaderLen:], payload)
	sum := transportChecksum(src, dst, protocolUDP, dg)
	if sum == 0 {
		sum = 0xffff // zero means "no checksum" in UDP
	}
	be.PutUint16(dg[6:], sum)
	return p.ipPacket(src.Addr(), dst.Addr(), protocolUDP, dg)
}

// transportChecksum is the TCP/UDP checksum: a pseudo header of the
// addresses, protocol and length, then the segment (its checksum field
// zero).
func transportChecksum(src, dst netip.AddrPort, proto byte, seg []byte) uint16 {
	var sum uint32
	sum = checksumAdd(sum, src.Addr().AsSlice())
	sum = checksumAdd(sum, dst.Addr().AsSlice())
	sum += uint32(proto) + uint32(len(seg))
	sum = checksumAdd(sum, seg)
	return checksumFold(sum)
}

// ipPacket prefixes an IPv4 or IPv6 header to a transport segment.
func (p *PcapNG) ipPacket(src, dst netip.Addr, proto byte, seg []byte) []byte {
	be := binary.BigEndian
	if src.Is4() {
		pkt := make([]byte, ipv4HeaderLen+len(seg))
		ip := pkt[:ipv4HeaderLen]
		ip[0] = 0x45
		be.PutUint16(ip[2:], uint16(len(pkt)))
		p.ipID++
		be.PutUint16(ip[4:], p.ipID)
		be.PutUint16(ip[6:], 0x4000) // don't fragment
		ip[8] = 64
		ip[9] = proto
		copy(ip[12:16], src.AsSlice())
		copy(ip[16:20], dst.AsSlice())
		be.PutUint16(ip[10:], checksumFold(checksumAdd(0, ip)))
		copy(pkt[ipv4HeaderLen:], seg)
		return pkt
	}
	pkt := make([]byte, ipv6HeaderLen+len(seg))
	ip := pkt[:ipv6HeaderLen]
	ip[0] = 0x60
	be.PutUint16(ip[4:], uint16(len(seg)))
	ip[6] = proto
	ip[7] = 64
	copy(ip[8:24], src.AsSlice())
	copy(ip[24:40], dst.AsSlice())
	copy(pkt[ipv6HeaderLen:], seg)
	return pkt
}

func checksumAdd(sum uint32, b []byte) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	return sum
}

func checksumFold(sum uint32) uint16 {
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

func (p *PcapNG) writeEPB(at time.Time, pkt []byte) error {
	le := binary.LittleEndian
	padded := (len(pkt) + 3) &^ 3
	total := 32 + padded
	b := make([]byte, total)
	le.PutUint32(b[0:], blockEnhancedPacket)
	le.PutUint32(b[4:], uint32(total))
	le.PutUint32(b[8:], 0) // interface 0
	us := uint64(at.UnixMicro())
	le.PutUint32(b[12:], uint32(us>>32))
	le.PutUint32(b[16:], uint32(us))
	le.PutUint32(b[20:], uint32(len(pkt)))
	le.PutUint32(b[24:], uint32(len(pkt)))
	copy(b[28:], pkt)
	le.PutUint32(b[total-4:], uint32(total))
	if _, err := p.w.Write(b); err != nil {
		return fmt.Errorf("pcapng: write packet: %w", err)
	}
	return nil
}

// PacketConn wraps the client's UDP socket (a QUIC client's): every
// datagram sent or received is recorded with the socket's address and the
// peer's. The socket must be bound to a specific address (127.0.0.1:0,
// not the wildcard), so the frames name real endpoints.
func (p *PcapNG) PacketConn(pc net.PacketConn) (net.PacketConn, error) {
	la, ok := pc.LocalAddr().(*net.UDPAddr)
	if !ok {
		return nil, errors.New("pcapng: not a UDP socket")
	}
	local := la.AddrPort()
	local = netip.AddrPortFrom(local.Addr().Unmap(), local.Port())
	if local.Addr().IsUnspecified() {
		return nil, errors.New("pcapng: UDP socket bound to the wildcard address")
	}
	return &pcapPacketConn{PacketConn: pc, p: p, local: local}, nil
}

type pcapPacketConn struct {
	net.PacketConn
	p     *PcapNG
	local netip.AddrPort
}

func (c *pcapPacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, addr, err := c.PacketConn.ReadFrom(b)
	if n > 0 {
		c.p.datagram(addr, c.local, false, b[:n])
	}
	return n, addr, err
}

// WriteTo records the datagram before sending it, for the reason given at
// pcapConn.Write.
func (c *pcapPacketConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	c.p.datagram(addr, c.local, true, b)
	return c.PacketConn.WriteTo(b, addr)
}

// datagram records one UDP datagram between the wrapped socket and peer.
func (p *PcapNG) datagram(peer net.Addr, local netip.AddrPort, sent bool, b []byte) {
	ua, ok := peer.(*net.UDPAddr)
	if !ok {
		return
	}
	remote := ua.AddrPort()
	remote = netip.AddrPortFrom(remote.Addr().Unmap(), remote.Port())
	if remote.Addr().Is4() != local.Addr().Is4() {
		return
	}
	src, dst := remote, local
	if sent {
		src, dst = local, remote
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return
	}
	if sent {
		p.ports[remote.Port()] = true
	}
	p.err = p.writeEPB(time.Now(), p.udpPacket(src, dst, b))
	p.packets++
}

// SetReadBuffer and SetWriteBuffer pass socket buffer sizes through (QUIC
// stacks raise them); the wrapper deliberately offers nothing that would let
// a stack read or write around it.
func (c *pcapPacketConn) SetReadBuffer(n int) error {
	if s, ok := c.PacketConn.(interface{ SetReadBuffer(int) error }); ok {
		return s.SetReadBuffer(n)
	}
	return errors.New("pcapng: socket has no read buffer setting")
}

// SetWriteBuffer: see SetReadBuffer.
func (c *pcapPacketConn) SetWriteBuffer(n int) error {
	if s, ok := c.PacketConn.(interface{ SetWriteBuffer(int) error }); ok {
		return s.SetWriteBuffer(n)
	}
	return errors.New("pcapng: socket has no write buffer setting")
}
