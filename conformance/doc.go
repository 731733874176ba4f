// Package conformance is the sensor's conformance suite: every fixture under
// fixtures/ is replayed through every capture path the machine supports,
// every event is validated against the OISP v0.1 schema (envelope, then data
// against the branch named by event_type), and the events are compared with
// the fixture's reviewed expected.jsonl.
//
// Run it with `go test ./conformance/...`; rewrite goldens after reviewing a
// decoder change with `go test ./conformance/ -run TestFixtures -update`.
package conformance
