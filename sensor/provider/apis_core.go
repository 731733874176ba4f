package provider

// coreAPIs lists the OpenAI-format and Anthropic decoders.
func coreAPIs() []API {
	return nil
}
