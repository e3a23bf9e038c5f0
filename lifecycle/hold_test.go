package lifecycle

import (
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/sandboxd/sandboxd/internal/initproto"
	"github.com/sandboxd/sandboxd/internal/testutil"
	"github.com/sandboxd/sandboxd/store"
)

// heldService does its work only where ~/fork-me is (in a fork, or once the test says so):
// it says in ~/saw whether the hold was still there and whether it could append to every
// file under ~/workspace/app/many, which it can only once they are its uid's.
var heldService = store.Service{Name: "web", Cmd: []string{"sh", "-c", `if [ -e ~/fork-me ]; then
  if [ -e ` + initproto.HoldPath() + ` ]; then echo held > ~/saw; exec sleep 600; fi
  for f in ~/workspace/app/many/*; do echo y >> "$f" || { echo "cannot write $f" > ~/saw; exec sleep 600; }; done
  echo ok > ~/saw
fi
exec sleep 600`}}

// manyFiles makes n files under ~/workspace/app/many of id, and ~/fork-me.
func manyFiles(t *testing.T, h *harness, id string, n int) {
	t.Helper()
	res := h.exec(t, id, "sh", "-c", `mkdir -p workspace/app/many && cd workspace/app/many && i=0
while [ $i -lt `+strconv.Itoa(n)+` ]; do echo x > $i; i=$((i+1)); done; touch ~/fork-me`)
	if res.ExitCode != 0 {
		t.Fatalf("making files: %s", res.Stderr)
	}
}

// containerLog is the output of id's container so far.
func (h *harness) containerLog(id string) string {
	ctx := context.Background()
	byID, err := h.m.listContainers(ctx, id)
	if err != nil || len(byID[id]) == 0 {
		return ""
	}
	rc, err := h.docker.ContainerLogs(ctx, byID[id][0].ID, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return ""
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	return string(b)
}

// owners counts the entries of dir by owner ("1000:1000"), from testutil.TreeListing.
func owners(t *testing.T, dir string) map[string]int {
	t.Helper()
	got := map[string]int{}
	for _, line := range testutil.TreeListing(t, dir) {
		got[ownerField.FindStringSubmatch(line)[1]]++
	}
	return got
}

var ownerField = regexp.MustCompile(` owner=(\d+:\d+)`)

// ownedBy reports whether everything in got belongs to uid, as user and group.
func ownedBy(got map[string]int, uid int) bool {
	return len(got) == 1 && got[strconv.Itoa(uid)+":"+strconv.Itoa(uid)] > 0
}

const waitingLine = "waiting for sandboxd to make the workspace ready"

// A fork on btrfs (a subvolume snapshot, still its source's) is given to its uid while its
// container starts (issue 18), and its services start only once every file is theirs:
// here, while the reown is kept from starting until the fork's sandbox-init is seen
// waiting, the fork's service then appends to each of 2,000 copied files.
func TestForkOnBtrfsStartsServicesOnceTheFilesAreTheirs(t *testing.T) {
	t.Parallel()
	data := testutil.Btrfs(t, 512<<20)
	var held, prepared atomic.Bool
	h := newHarnessAt(t, data, nil)
	m := New(h.db, h.docker, h.cfg, nil)
	m.Hook = func(point string) {
		if point != "create.prepare" {
			return
		}
		prepared.Store(true)
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			if strings.Contains(h.containerLog("hold-fork"), waitingLine) {
				held.Store(true)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if err := m.Boot(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.m = m
	ctx := context.Background()

	h.create(t, CreateRequest{ID: "hold-src", Services: []store.Service{heldService}})
	manyFiles(t, h, "hold-src", 2000)
	fork, err := h.m.Fork(ctx, "hold-src", "hold-fork")
	if err != nil {
		t.Fatal(err)
	}
	if !prepared.Load() {
		t.Fatal("the fork's workspace was made ready before its container started, not beside it")
	}
	if !held.Load() {
		t.Fatalf("the fork's sandbox-init never waited for its workspace; its log:\n%s", h.containerLog("hold-fork"))
	}
	saw := filepath.Join(h.m.workspaceDir(fork.ID), "saw")
	testutil.Eventually(t, 30*time.Second, "the fork's service to say what it saw", func() bool {
		b, _ := os.ReadFile(saw)
		return strings.HasSuffix(string(b), "\n")
	})
	if b, _ := os.ReadFile(saw); string(b) != "ok\n" {
		t.Errorf("the fork's service saw %q", b)
	}
	if _, err := os.Stat(h.m.holdPath(fork.ID)); err == nil {
		t.Error("the fork's hold is still there")
	}
	if got := owners(t, h.m.workspaceDir(fork.ID)); !ownedBy(got, fork.UID) {
		t.Errorf("the fork's workspace belongs to %v, want all of it %d's", got, fork.UID)
	}
}

// A create cut short between its container's start and its reown's end (sandboxd ended)
// leaves a container whose sandbox-init waits on the hold, and files the reown had not
// reached yet, below a top directory it had. The next boot finishes the reown from the uid
// the hold names and lifts it, and the services start on files that are theirs.
func TestBootFinishesAHeldWorkspace(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	sb := h.create(t, CreateRequest{ID: "held", Services: []store.Service{heldService}})
	manyFiles(t, h, "held", 50)
	if err := h.m.Stop(ctx, "held"); err != nil {
		t.Fatal(err)
	}
	const from = 4242 // the source's uid, in this made-up cut-short fork
	dir := h.m.workspaceDir("held")
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		return os.Lchown(p, from, from)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.m.hold(sb, from); err != nil {
		t.Fatal(err)
	}
	byID, err := h.m.listContainers(ctx, "held")
	if err != nil || len(byID["held"]) == 0 {
		t.Fatalf("no container: %v", err)
	}
	if err := h.docker.ContainerStart(ctx, byID["held"][0].ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, "sandbox-init waiting on the hold", func() bool {
		return strings.Contains(h.containerLog("held"), waitingLine)
	})

	again := New(h.db, h.docker, h.cfg, nil)
	if err := again.Boot(ctx); err != nil {
		t.Fatal(err)
	}
	saw := filepath.Join(dir, "saw")
	testutil.Eventually(t, 30*time.Second, "the service to say what it saw", func() bool {
		b, _ := os.ReadFile(saw)
		return strings.HasSuffix(string(b), "\n")
	})
	if b, _ := os.ReadFile(saw); string(b) != "ok\n" {
		t.Errorf("the service saw %q", b)
	}
	if _, err := os.Stat(h.m.holdPath("held")); err == nil {
		t.Error("the hold is still there")
	}
	if got := owners(t, dir); !ownedBy(got, sb.UID) {
		t.Errorf("the workspace belongs to %v, want all of it %d's", got, sb.UID)
	}
	if got, err := again.Get(ctx, "held"); err != nil || got.Status != store.StatusRunning {
		t.Errorf("after boot: %+v %v", got.Status, err)
	}
}
