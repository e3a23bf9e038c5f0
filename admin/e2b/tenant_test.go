package e2b

import (
	"context"
	"testing"
)

// A tenant's key creates sandboxes of its tenant, with ids the SDKs can split on "-"
// (bare letters and digits, not "<tenant>--…"), and another tenant's key finds none of
// them: 404 on the sandbox, nothing in the list. The operator's key sees them all.
func TestTenantScoping(t *testing.T) {
	st := newStack(t)
	var a sandboxView
	if code, _ := st.call(t, "POST", "/sandboxes", `{"templateID":"base","timeout":300,"allow_internet_access":false}`, &a, "X-API-Key", acmeKey); code != 201 || !e2bID.MatchString(a.SandboxID) {
		t.Fatalf("tenant create: %d %+v", code, a)
	}
	sb, err := st.mgr.Get(context.Background(), a.SandboxID)
	if err != nil || sb.Tenant != "acme" || sb.Egress != "none" {
		t.Fatalf("the row of %s: tenant %q, egress %q, %v; want acme, none (allow_internet_access false)", a.SandboxID, sb.Tenant, sb.Egress, err)
	}
	for _, c := range []struct{ method, path string }{
		{"GET", "/sandboxes/" + a.SandboxID},
		{"POST", "/sandboxes/" + a.SandboxID + "/timeout"},
		{"POST", "/sandboxes/" + a.SandboxID + "/pause"},
		{"DELETE", "/sandboxes/" + a.SandboxID},
	} {
		var e e2bError
		if code, _ := st.call(t, c.method, c.path, `{"timeout":60}`, &e, "X-API-Key", betaKey); code != 404 {
			t.Errorf("another tenant's %s %s: %d %+v, want 404", c.method, c.path, code, e)
		}
	}
	for key, want := range map[string]int{betaKey: 0, acmeKey: 1, testAPIKey: 1} {
		var list []detailView
		if code, _ := st.call(t, "GET", "/v2/sandboxes", "", &list, "X-API-Key", key); code != 200 || len(list) != want {
			t.Errorf("list with %s: %d, %d sandboxes, want %d", key, code, len(list), want)
		}
	}
	if _, err := st.mgr.Get(context.Background(), a.SandboxID); err != nil {
		t.Fatalf("the other tenant's calls changed the sandbox: %v", err)
	}
}

// What a tenant's key does is audited under its tenant, so GET /v1/audit?tenant= finds
// it; the rows used to carry no tenant.
func TestAuditTenant(t *testing.T) {
	st := newStack(t)
	var a sandboxView
	if code, _ := st.call(t, "POST", "/sandboxes", `{"templateID":"base","timeout":300}`, &a, "X-API-Key", acmeKey); code != 201 {
		t.Fatalf("tenant create: %d", code)
	}
	st.audits.mu.Lock()
	defer st.audits.mu.Unlock()
	for _, x := range st.audits.list {
		if x.Action == "e2b.sandbox.create" && x.Target == a.SandboxID {
			if x.Tenant != "acme" || x.Actor != "a" {
				t.Fatalf("audit row %+v: want actor a, tenant acme", x)
			}
			return
		}
	}
	t.Fatalf("no audit row for the create of %s: %+v", a.SandboxID, st.audits.list)
}
