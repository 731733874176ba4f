package spec

import "embed"

// WireFS holds the extension socket protocol: wire/PROTOCOL.md (the
// document) and wire/vectors.json (encoded frames with their decoded fields
// and invalid inputs with the error each must produce), checked by the Go
// socket package and by the Swift extension.
//
//go:embed wire/PROTOCOL.md wire/vectors.json
var WireFS embed.FS
