// Package spec owns the machine-readable OISP v0.1 definitions the sensor
// and its conformance suite are held to: the JSON Schema for the event
// envelope, the shared context objects and every event payload (embedded
// from schema/v0.1 so validation never touches the network), the validator
// that applies them, and the other specification data kept next to them.
//
// The schema files carry the upstream $id URLs
// (https://oisp.dev/schema/v0.1/...), so their relative $refs resolve
// exactly as they do in the upstream specification.
package spec

import "embed"

// SchemaFS holds the OISP v0.1 JSON Schema files under schema/v0.1/:
// envelope.schema.json, common/*.schema.json and events/*.schema.json.
//
//go:embed schema
var SchemaFS embed.FS

// SchemaBaseURL is the $id prefix of every OISP v0.1 schema file; a file's
// $id is this prefix followed by its path relative to schema/v0.1.
const SchemaBaseURL = "https://oisp.dev/schema/v0.1/"

// EnvelopeSchemaURL is the $id of the event envelope schema.
const EnvelopeSchemaURL = SchemaBaseURL + "envelope.schema.json"

// embeddedSchemaRoot is where the v0.1 files sit inside SchemaFS.
const embeddedSchemaRoot = "schema/v0.1"
