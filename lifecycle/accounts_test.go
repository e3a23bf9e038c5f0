package lifecycle

import (
	"strings"
	"testing"
)

func TestSandboxAccounts(t *testing.T) {
	t.Parallel()
	img := accountFiles{
		passwd: []byte("root:x:0:0:root:/root:/bin/bash\n# comment\n_apt:x:42:65534::/nonexistent:/usr/sbin/nologin\nsandbox:x:1000:1000::/home/sandbox:/bin/bash\nclash:x:200001:5::/x:/bin/sh\n"),
		group:  []byte("root:x:0:\nsandbox:x:1000:\nclash:x:200001:\nusers:x:100:\n"),
	}
	passwd, group := sandboxAccounts(img, 200001)
	if want := "root:x:0:0:root:/root:/bin/bash\n_apt:x:42:65534::/nonexistent:/usr/sbin/nologin\nsandbox:x:200001:200001:sandbox:/home/sandbox:/bin/bash\n"; string(passwd) != want {
		t.Errorf("passwd:\n%s\nwant:\n%s", passwd, want)
	}
	if want := "root:x:0:\nusers:x:100:\nsandbox:x:200001:\n"; string(group) != want {
		t.Errorf("group:\n%s\nwant:\n%s", group, want)
	}
	passwd, _ = sandboxAccounts(minimalAccounts, 200002)
	if !strings.HasSuffix(string(passwd), "sandbox:x:200002:200002:sandbox:/home/sandbox:/bin/sh\n") {
		t.Errorf("from the minimal accounts:\n%s", passwd)
	}
}
