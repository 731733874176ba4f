package provider

import "github.com/oisp/oisp-sensor/sensor/stats"

// moreAPIs lists the decoders of the other providers (Gemini, Vertex,
// Bedrock, Cohere, Ollama, Writer, rerank, Hugging Face inference). They match on their providers' hosts (and, for
// Gemini and Ollama, unknown hosts whose paths and bodies have the API's
// shape), so they run before the generic OpenAI-format decoders.
func moreAPIs() []API {
	var apis []API
	apis = append(apis, newGeminiAPIs()...)
	apis = append(apis, newVertexAPIs()...)
	apis = append(apis, newBedrockAPIs()...)
	apis = append(apis, newCohereAPIs()...)
	apis = append(apis, newOllamaAPIs()...)
	apis = append(apis, writerChatAPI{}, writerCompletionsAPI{})
	apis = append(apis, newRerankAPIs()...)
	apis = append(apis, huggingFaceInferenceAPI{})
	return apis
}

// envStats is the recorder of env, never nil.
func envStats(env Env) stats.Recorder {
	if env.Stats == nil {
		return stats.Discard{}
	}
	return env.Stats
}
