package provider

// moreAPIs lists the decoders of the other providers (Gemini, Vertex,
// Bedrock, Cohere, Ollama). They match on their providers' hosts (and, for
// Gemini and Ollama, unknown hosts whose paths and bodies have the API's
// shape), so they run before the generic OpenAI-format decoders.
func moreAPIs() []API {
	var apis []API
	apis = append(apis, newGeminiAPIs()...)
	apis = append(apis, newVertexAPIs()...)
	apis = append(apis, newBedrockAPIs()...)
	apis = append(apis, newCohereAPIs()...)
	apis = append(apis, newOllamaAPIs()...)
	return apis
}
