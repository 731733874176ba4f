package provider

// BuiltinAPIs returns every API decoder in match order: specific formats
// first, the generic OpenAI-shaped decoders (which also accept unknown hosts
// by path and body shape) last. Adding an API family means one file and one
// line in coreAPIs or moreAPIs.
func BuiltinAPIs() []API {
	apis := moreAPIs()
	return append(apis, coreAPIs()...)
}
