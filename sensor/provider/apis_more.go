package provider

// moreAPIs lists the decoders of the other providers (Gemini, Vertex,
// Bedrock, Cohere, Ollama, WebSocket APIs).
func moreAPIs() []API {
	var apis []API
	apis = append(apis, newGeminiAPIs()...)
	apis = append(apis, newVertexAPIs()...)
	return apis
}
