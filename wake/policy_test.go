package wake

import "testing"

func TestPolicyWakes(t *testing.T) {
	tests := []struct {
		policy Policy
		kind   Kind
		wakes  bool
	}{
		{OnNavigation, Navigation, true},
		{OnNavigation, Program, true},
		{OnNavigation, Background, false},
		{OnAny, Navigation, true},
		{OnAny, Program, true},
		{OnAny, Background, true},
	}
	for _, tc := range tests {
		if got := tc.policy.Wakes(tc.kind); got != tc.wakes {
			t.Errorf("%s.Wakes(%s) = %v, want %v", tc.policy, tc.kind, got, tc.wakes)
		}
	}
	var zero Policy
	if zero != OnNavigation {
		t.Error("the zero Policy is not the default, navigation")
	}
}

func TestParsePolicy(t *testing.T) {
	for in, want := range map[string]Policy{"": OnNavigation, "navigation": OnNavigation, "any": OnAny} {
		if got, err := ParsePolicy(in); err != nil || got != want {
			t.Errorf("ParsePolicy(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{"Any", "never", "navigate"} {
		if _, err := ParsePolicy(bad); err == nil {
			t.Errorf("ParsePolicy(%q) accepted it", bad)
		}
	}
}
