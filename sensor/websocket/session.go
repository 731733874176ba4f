package websocket

import (
	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/stats"
)

// Sink receives the messages of upgraded connections. Upgrade is the
// exchange of the 101 handshake (method, URL, headers: which API this is).
// Calls for one connection are serialised.
type Sink interface {
	// Message is called for every data message, in arrival order.
	Message(upgrade *httpmsg.Exchange, m Message)
	// Closed is called once when the flow ends.
	Closed(upgrade *httpmsg.Exchange, s Summary)
}

// Summary describes a finished connection.
type Summary struct {
	ClientClose, ServerClose *CloseFrame
	Messages                 int
	// Err is the framing error that stopped decoding a direction, if any.
	ClientErr, ServerErr error
}

// decoder adapts a Conn to httpmsg.Decoder for the HTTP/1.1 decoder's
// upgrade hook.
type decoder struct {
	up    *httpmsg.Exchange
	sink  Sink
	conn  *Conn
	count int
}

// NewDecoder returns the decoder of the bytes that follow a WebSocket
// handshake (use IsUpgrade to check the exchange first): extensions come
// from the 101 response.
func NewDecoder(up *httpmsg.Exchange, sink Sink, rec stats.Recorder, opt Options) httpmsg.Decoder {
	d := &decoder{up: up, sink: sink}
	var ext Extensions
	if up.Response != nil {
		ext = ParseExtensions(up.Response.Header)
	}
	d.conn = NewConn(ext, func(m Message) {
		d.count++
		sink.Message(up, m)
	}, rec, opt)
	return d
}

func (d *decoder) Feed(c flow.Chunk) { d.conn.Feed(c) }

func (d *decoder) Close(ci flow.CloseInfo) {
	d.conn.Close(ci)
	cc, sc := d.conn.CloseFrames()
	d.sink.Closed(d.up, Summary{
		ClientClose: cc, ServerClose: sc, Messages: d.count,
		ClientErr: d.conn.Err(flow.ClientToServer), ServerErr: d.conn.Err(flow.ServerToClient),
	})
}
