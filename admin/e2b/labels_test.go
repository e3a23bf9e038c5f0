package e2b

import (
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func TestMetadataLabels(t *testing.T) {
	cases := []struct{ key, label string }{
		{"user", "user"},
		{"session_id", "session_id"},
		{"userId", "e2b.m.user.49d"},
		{"team/name", "e2b.m.team.2fname"},
		{"e2b.managed", "e2b.m.e2b.2emanaged"}, // sandboxd's own names are never taken
		{"a.b", "a.b"},
		{"_x", "e2b.m._x"},
	}
	for _, c := range cases {
		got, err := metadataLabel(c.key)
		if err != nil || got != c.label {
			t.Errorf("metadataLabel(%q) = %q, %v; want %q", c.key, got, err, c.label)
			continue
		}
		if !labelKey.MatchString(got) {
			t.Errorf("label %q of %q is not a label key", got, c.key)
		}
		if back, ok := metadataKey(got); !ok || back != c.key {
			t.Errorf("metadataKey(%q) = %q, %v; want %q", got, back, ok, c.key)
		}
	}
	for _, own := range []string{labelManaged, labelTemplate, labelTimeout, labelOnTimeout, "e2b.m.bad.zz", "e2b.m.x."} {
		if k, ok := metadataKey(own); ok {
			t.Errorf("label %q reads as metadata %q", own, k)
		}
	}
	for _, bad := range []string{"", strings.Repeat("A", 30)} {
		if _, err := metadataLabel(bad); err == nil {
			t.Errorf("metadataLabel(%q) took it", bad)
		}
	}
	md := map[string]string{"userId": "u1", "plain": "v"}
	labels, err := metadataLabels(md)
	if err != nil {
		t.Fatal(err)
	}
	labels[labelManaged] = "1"
	back := labelsMetadata(labels)
	if len(back) != 2 || back["userId"] != "u1" || back["plain"] != "v" {
		t.Fatalf("round trip: %v", back)
	}
}

func FuzzMetadataLabel(f *testing.F) {
	for _, s := range []string{"userId", "a", "e2b.x", "ü", "a.b-c_d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		label, err := metadataLabel(key)
		if err != nil {
			return
		}
		if !labelKey.MatchString(label) {
			t.Fatalf("label %q of %q is not a label key", label, key)
		}
		if back, ok := metadataKey(label); !ok || back != key {
			t.Fatalf("%q → %q → %q, %v", key, label, back, ok)
		}
	})
}

// TestNewAPIKey: a minted key passes E2B's SDKs' own check, "e2b_" and hex.
func TestNewAPIKey(t *testing.T) {
	k := NewAPIKey()
	if !regexp.MustCompile(`\Ae2b_[0-9a-f]{40}\z`).MatchString(k) || k == NewAPIKey() {
		t.Fatalf("NewAPIKey() = %q", k)
	}
}

// TestParseMetadataFilter: the list filter as each SDK encodes it (after the query string's
// own decoding): Python quotes keys and values with "/" kept, JS with encodeURIComponent.
func TestParseMetadataFilter(t *testing.T) {
	want, _ := metadataLabels(map[string]string{"user id": "a/b", "k": "v"})
	for name, v := range map[string]string{
		"python": "user%2520id=a%2Fb&k=v",
		"js":     "user%2520id=a%252Fb&k=v",
	} {
		got, err := parseMetadata(v)
		if err != nil || len(got) != 2 || got["k"] != "v" || got["e2b.m.user.20id"] != "a/b" || len(want) != 2 {
			t.Errorf("%s: %v %v, want %v", name, got, err, want)
		}
	}
}

// TestListenerPreflight: the E2B listener answers a browser's preflight for envd paths
// (which carry no E2b-Sandbox-Id to route by), and not for the control plane.
func TestListenerPreflight(t *testing.T) {
	s := New(nil, nil, nil, keys{}, []byte("0123456789abcdef0123456789abcdef"), nil)
	for path, want := range map[string]int{"/process.Process/Start": 204, "/files": 204, "/sandboxes": 401} {
		r := httptest.NewRequest("OPTIONS", path, nil)
		r.Header.Set("Origin", "https://app.example")
		r.Header.Set("Access-Control-Request-Method", "POST")
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, r)
		if w.Code != want {
			t.Errorf("preflight of %s: %d, want %d", path, w.Code, want)
		}
	}
}
