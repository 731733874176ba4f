package pipeline

import (
	"strconv"
	"testing"

	"github.com/oisp/oisp-sensor/sensor/provider"
)

// TestTargetCache checks that cached lookups answer what the registry
// answers, on the first and later asks, and that the cache stays bounded.
func TestTargetCache(t *testing.T) {
	reg, err := provider.LoadRegistry(provider.RegistryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var c targetCache
	for _, tc := range []struct {
		host string
		port int
	}{
		{"api.openai.com", 443}, {"API.OpenAI.com.", 443}, {"api.openai.com", 8443}, {"myres.openai.azure.com", 443},
		{"localhost:11434", 0}, {"localhost", 11434}, {"[::1]:8000", 0}, {"unknown.example", 80}, {"", 0},
	} {
		want, _ := reg.Lookup(tc.host, tc.port)
		for range 2 {
			if got := c.lookup(reg, tc.host, tc.port); got != want {
				t.Fatalf("lookup(%q, %d) = %+v; registry says %+v", tc.host, tc.port, got, want)
			}
		}
	}
	for i := range maxCachedTargets + 10 {
		c.lookup(reg, "h"+strconv.Itoa(i)+".example", 443)
		if n := c.memo.len(); n > maxCachedTargets {
			t.Fatalf("%d targets cached; bound %d", n, maxCachedTargets)
		}
	}
}

// TestToolTypeCache checks that cached types are toolType's, on the first
// and later asks, and that the cache stays bounded.
func TestToolTypeCache(t *testing.T) {
	var c toolTypeCache
	for _, name := range []string{
		"get_weather", "Bash", "bash", "str_replace_based_edit_tool", "web_search", "read", "READ", "view",
		"create_file", "computer", "http_get", "run_sql", "python", "final_result", "", "getWeather",
	} {
		for range 2 {
			if got, want := c.of(name), toolType(name); got != want {
				t.Fatalf("of(%q) = %q; toolType says %q", name, got, want)
			}
		}
	}
	for i := range maxCachedToolTypes + 10 {
		c.of("tool_" + strconv.Itoa(i))
		if n := c.memo.len(); n > maxCachedToolTypes {
			t.Fatalf("%d tool names cached; bound %d", n, maxCachedToolTypes)
		}
	}
}
