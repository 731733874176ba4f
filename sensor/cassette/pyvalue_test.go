package cassette

import (
	"math"
	"testing"
)

// Expected strings are Python 3's repr(float) and json.dumps output.
func TestPyFloatRepr(t *testing.T) {
	for _, tc := range []struct {
		f    float64
		want string
	}{
		{0, "0.0"}, {math.Copysign(0, -1), "-0.0"}, {1, "1.0"}, {100, "100.0"}, {0.1, "0.1"},
		{0.0001, "0.0001"}, {0.00001, "1e-05"}, {1.5e-7, "1.5e-07"}, {123.456, "123.456"},
		{1e15, "1000000000000000.0"}, {1234567890123456, "1234567890123456.0"}, {1e16, "1e+16"},
		{1.5e16, "1.5e+16"}, {1e100, "1e+100"}, {-2.5, "-2.5"}, {5e-324, "5e-324"},
		{1.7976931348623157e308, "1.7976931348623157e+308"}, {0.30000000000000004, "0.30000000000000004"},
	} {
		if got := pyFloatRepr(tc.f); got != tc.want {
			t.Errorf("repr(%v) = %q, want %q", tc.f, got, tc.want)
		}
	}
	if pyJSONFloat(math.Inf(-1)) != "-Infinity" || pyJSONFloat(math.NaN()) != "NaN" {
		t.Error("non-finite floats")
	}
}

func TestPyResolve(t *testing.T) {
	for s, want := range map[string]string{
		"": "!!null", "~": "!!null", "null": "!!null", "NULL": "!!null", "nul": "",
		"yes": "!!bool", "Off": "!!bool", "y": "", "true": "!!bool",
		"1.0": "!!float", "1e5": "", "1.0e+5": "!!float", "1.0e5": "", ".5": "!!float", ".inf": "!!float", "-.Inf": "!!float", "inf": "", ".nan": "!!float",
		"12": "!!int", "0x1f": "!!int", "017": "!!int", "0b101": "!!int", "1:30": "!!int", "1_000": "!!int", "08": "",
		"1:30.5": "!!float", "2024-01-01": "", "<<": "!!merge", "gpt-4o": "",
	} {
		if got := pyResolve(s); got != want {
			t.Errorf("resolve(%q) = %q, want %q", s, got, want)
		}
	}
}

func TestPyJSONDumpsFromJSON(t *testing.T) {
	for in, want := range map[string]string{
		`{"b":1,"a":[true,false,null],"a":2}`:             `{"b": 1, "a": 2}`,
		`[1.0, 1E400, -0, 1e-7, 12345678901234567890123]`: `[1.0, Infinity, 0, 1e-07, 12345678901234567890123]`,
		`"\u2028 \ud83d\ude00 \/ \u0000"`:                 `"\u2028 \ud83d\ude00 / \u0000"`,
		`{}`:                                              `{}`,
	} {
		v, err := parseJSONValue([]byte(in))
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		got, err := pyJSONDumps(v)
		if err != nil || string(got) != want {
			t.Errorf("dumps(%s) = %s (%v), want %s", in, got, err, want)
		}
	}
	if _, err := parseJSONValue([]byte(`{} x`)); err == nil {
		t.Error("trailing data accepted")
	}
}

func TestYAMLMergeAndAliases(t *testing.T) {
	v, err := parseYAMLDocument([]byte("base: &b {x: 1, y: 2}\nuse:\n  <<: *b\n  y: 3\n  z: *b\n"))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := pyJSONDumps(v)
	if want := `{"base": {"x": 1, "y": 2}, "use": {"x": 1, "y": 3, "z": {"x": 1, "y": 2}}}`; string(got) != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
}

func TestYAMLAliasBombBounded(t *testing.T) {
	doc := "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	prev := "a"
	for i := 0; i < 9; i++ {
		name := string(rune('b' + i))
		doc += name + ": &" + name + " [*" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + "]\n"
		prev = name
	}
	if _, err := parseYAMLDocument([]byte(doc)); err == nil {
		t.Error("billion laughs expanded")
	}
}
