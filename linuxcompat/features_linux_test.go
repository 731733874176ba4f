//go:build linux && amd64

package linuxcompat

import "testing"

// TestFeaturesAgreeWithAvailable: Available is true exactly when every
// required feature is present.
func TestFeaturesAgreeWithAvailable(t *testing.T) {
	all := true
	names := map[string]bool{}
	for _, f := range Features() {
		names[f.Name] = true
		if f.Required && !f.OK {
			all = false
		}
		if f.Detail == "" {
			t.Errorf("feature %s has no detail", f.Name)
		}
	}
	if all != Available() {
		t.Errorf("required features all present = %v, Available() = %v", all, Available())
	}
	for _, n := range []string{"kernel", "root", "uprobes", "ring buffer", "uprobe_multi links"} {
		if !names[n] {
			t.Errorf("feature %q not reported", n)
		}
	}
}
