package spec

import "embed"

// RegistryFS holds the provider registry data: registry/providers.json
// (hosts and API formats) and registry/models.json (model metadata and
// prices, generated from the OISP bundle).
//
//go:embed registry/*.json
var RegistryFS embed.FS
