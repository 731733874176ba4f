package socket

import (
	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/oisp/oisp-sensor/sensor/flow/flowtest"
)

// recorder keeps every flow and system event the server hands over.
type recorder = flowtest.Recorder

func newRecorder() *recorder { return flowtest.NewRecorder() }

func joined(chunks []flow.Chunk, dir flow.Direction, stream int64) []byte {
	return flowtest.Joined(chunks, dir, stream)
}

func gaps(chunks []flow.Chunk, dir flow.Direction) int64 { return flowtest.Gaps(chunks, dir) }

func finSeen(chunks []flow.Chunk, dir flow.Direction, stream int64) bool {
	return flowtest.FinSeen(chunks, dir, stream)
}
