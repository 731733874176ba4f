// Package socket owns the extension socket: the Unix-domain stream socket
// over which capture helpers (the macOS network extension, `oisp-sensor
// proxy --emit unix:PATH`) hand flows and host activity to a running sensor.
//
// The wire protocol is specified in spec/wire/PROTOCOL.md with test vectors
// in spec/wire/vectors.json. Server is the sensor side (a flow.Source);
// Client is the capture side (a flow.Handler). The server also accepts the
// upstream project's newline-delimited JSON messages on the same socket.
package socket
