package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/lifecycle/dockertest"
)

// The prereqs tests play a fresh machine: images/prereqs.sh (and make, which runs it) see a
// PATH holding only a few basic tools and stand-ins for the commands a case has, and an
// apt-get stand-in that logs its arguments and "installs" a package by adding stand-ins
// for its commands. No real apt runs, and the host's own tools stay out of sight.

// basics are the real tools the script and make need to run at all; a fresh Debian has them.
var basics = []string{"bash", "sh", "env", "ldd", "mktemp", "tail", "rm", "sed", "cat", "mkdir", "find", "make", "dirname"}

// allCommands are the commands images/prereqs.sh checks for, all present on a set-up host.
var allCommands = []string{"go", "gcc", "git", "make", "docker", "busybox", "bash-static", "debootstrap", "gpgv", "curl", "systemd-analyze", "mkfs.btrfs", "mkfs.xfs", "nginx", "caddy"}

// pkgCommands is what the apt-get stand-in installs for each package.
var pkgCommands = map[string][]string{
	"gcc": {"gcc"}, "git": {"git"}, "make": {"make"}, "busybox-static": {"busybox"},
	"bash-static": {"bash-static"}, "debootstrap": {"debootstrap"}, "gpgv": {"gpgv"},
	"curl": {"curl"}, "systemd": {"systemd-analyze"}, "btrfs-progs": {"mkfs.btrfs"}, "xfsprogs": {"mkfs.xfs"},
	"nginx": {"nginx"}, "caddy": {"caddy"},
}

// fakeHost is a machine for one case.
type fakeHost struct {
	t    *testing.T
	bin  string // the whole PATH
	sbin string // the sbin directory, searched by the script besides PATH
	log  string // apt-get's calls, one a line
	uid  string
}

// newFakeHost makes a host where uid runs and the commands in have exist (as stand-ins
// that a static check takes for static binaries).
func newFakeHost(t *testing.T, uid string, have ...string) *fakeHost {
	t.Helper()
	dir := t.TempDir()
	h := &fakeHost{t: t, bin: filepath.Join(dir, "bin"), sbin: filepath.Join(dir, "sbin"), log: filepath.Join(dir, "apt.log"), uid: uid}
	for _, d := range []string{h.bin, h.sbin} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range basics {
		real, err := exec.LookPath(name)
		if err != nil {
			t.Skipf("%s is not installed; the fresh-machine test needs it", name)
		}
		h.link(real, name)
	}
	for _, name := range have {
		h.stub(h.bin, name, "exit 0")
	}
	h.stub(h.bin, "id", `[ "$1" = -u ] && echo `+uid)
	// The stand-in apt-get: "install" adds the commands of known packages; FAKE_APT_FAIL
	// makes it fail as apt does when a package cannot be fetched.
	// Its own PATH is the host's: it is apt, not the machine under test.
	script := `PATH=/usr/bin:/bin
echo "apt-get $*" >>` + h.log + `
case " $* " in *" install "*) ;; *) exit 0 ;; esac
[ -z "$FAKE_APT_FAIL" ] || { echo "E: Unable to fetch some archives"; exit 100; }
for a in "$@"; do
	case $a in
`
	for pkg, cmds := range pkgCommands {
		script += "\t" + pkg + ")"
		for _, c := range cmds {
			script += ` rm -f ` + filepath.Join(h.bin, c) + `; printf '#!/bin/sh\nexit 0\n' >` + filepath.Join(h.bin, c) + `; chmod +x ` + filepath.Join(h.bin, c) + `;`
		}
		script += " ;;\n"
	}
	script += "\tesac\ndone\n"
	h.stub(h.bin, "apt-get", script)
	return h
}

// stub writes an executable shell script named name into dir.
func (h *fakeHost) stub(dir, name, body string) {
	h.t.Helper()
	p := filepath.Join(dir, name)
	os.Remove(p)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		h.t.Fatal(err)
	}
}

// link puts the real file at name on the host's PATH.
func (h *fakeHost) link(real, name string) {
	h.t.Helper()
	p := filepath.Join(h.bin, name)
	os.Remove(p)
	if err := os.Symlink(real, p); err != nil {
		h.t.Fatal(err)
	}
}

// env is the environment the script or make runs in on this host.
func (h *fakeHost) env(extra ...string) []string {
	return append([]string{"PATH=" + h.bin, "SANDBOXD_PREREQS_SBIN=" + h.sbin, "HOME=" + h.t.TempDir(), "TMPDIR=" + h.t.TempDir()}, extra...)
}

// run runs a command at the module root on this host and returns its output and exit code.
func (h *fakeHost) run(env []string, name string, args ...string) (string, int) {
	h.t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dockertest.ModuleRoot(h.t)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		}
		h.t.Fatalf("%s %v: %v", name, args, err)
	}
	return string(out), 0
}

// prereqs runs images/prereqs.sh with args.
func (h *fakeHost) prereqs(env []string, args ...string) (string, int) {
	h.t.Helper()
	return h.run(env, filepath.Join(dockertest.ModuleRoot(h.t), "images/prereqs.sh"), args...)
}

// aptCalls returns the apt-get calls made, one per line.
func (h *fakeHost) aptCalls() []string {
	b, err := os.ReadFile(h.log)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		h.t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// without returns allCommands less those named.
func without(names ...string) []string {
	return slices.DeleteFunc(slices.Clone(allCommands), func(c string) bool { return slices.Contains(names, c) })
}

const aptInstall = "apt-get -q -o DPkg::Lock::Timeout=300 install -y --no-install-recommends "

func TestPrereqsInstallsWhatIsMissingAsRoot(t *testing.T) {
	cases := []struct {
		name     string
		purposes []string
		have     []string
		wantPkgs string // the packages of the one install call, in order; "" for no apt at all
		wantSays []string
	}{
		{"test on a fresh machine", []string{"test"}, []string{"go", "make", "docker"},
			"gcc git busybox-static bash-static curl systemd btrfs-progs xfsprogs",
			[]string{"installing busybox-static for make testkit", "installing systemd for make test", "installing btrfs-progs for make test", "installing xfsprogs for make test", "installed gcc git busybox-static bash-static curl systemd btrfs-progs xfsprogs"}},
		{"run on a fresh machine", []string{"run"}, []string{"go", "make", "docker"},
			"gcc git debootstrap gpgv curl",
			[]string{"installing debootstrap for make image"}},
		{"only what testkit lacks", []string{"testkit"}, without("busybox", "debootstrap", "systemd-analyze", "mkfs.btrfs", "mkfs.xfs"),
			"busybox-static", []string{"installing busybox-static for make testkit"}},
		{"a package two purposes need, once", []string{"image", "test"}, without("curl"),
			"curl", nil},
		{"bench: the proxies it compares with", []string{"bench"}, without("nginx", "caddy"),
			"nginx caddy", []string{"installing nginx for make bench", "installing caddy for make bench"}},
		{"everything present: no apt", []string{"run", "test", "bench"}, allCommands, "", nil},
		{"a purpose that needs nothing missing: no apt", []string{"build"}, without("busybox", "debootstrap", "systemd-analyze", "mkfs.btrfs", "mkfs.xfs"), "", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			h := newFakeHost(t, "0", c.have...)
			out, code := h.prereqs(h.env(), c.purposes...)
			if code != 0 {
				t.Fatalf("prereqs %v: exit %d\n%s", c.purposes, code, out)
			}
			calls := h.aptCalls()
			if c.wantPkgs == "" {
				if calls != nil || out != "" {
					t.Fatalf("with nothing missing, prereqs called apt-get %q and said %q", calls, out)
				}
				return
			}
			want := []string{"apt-get -q -o DPkg::Lock::Timeout=300 update", aptInstall + c.wantPkgs}
			if !slices.Equal(calls, want) {
				t.Errorf("apt-get calls\n%q\nwant\n%q", calls, want)
			}
			for _, s := range c.wantSays {
				if !strings.Contains(out, s) {
					t.Errorf("output lacks %q:\n%s", s, out)
				}
			}
			// Now set up: a second run is silent and calls no apt.
			os.Remove(h.log)
			if out, code := h.prereqs(h.env(), c.purposes...); code != 0 || out != "" || h.aptCalls() != nil {
				t.Errorf("second run: exit %d, apt %q, said %q", code, h.aptCalls(), out)
			}
		})
	}
}

// A dynamically linked busybox (Debian's busybox package) cannot go into the FROM scratch
// testkit image: busybox-static is installed in its place.
func TestPrereqsWantsStaticBusybox(t *testing.T) {
	t.Parallel()
	h := newFakeHost(t, "0", without("busybox")...)
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	if err := exec.Command("ldd", bash).Run(); err != nil {
		t.Skipf("%s is not dynamically linked here", bash)
	}
	h.link(bash, "busybox")
	out, code := h.prereqs(h.env(), "testkit")
	if code != 0 || !slices.Contains(h.aptCalls(), aptInstall+"busybox-static") {
		t.Fatalf("exit %d, apt %q:\n%s", code, h.aptCalls(), out)
	}
}

func TestPrereqsNotRootPrintsTheCommand(t *testing.T) {
	t.Parallel()
	h := newFakeHost(t, "1000", without("gcc", "debootstrap", "busybox")...)
	out, code := h.prereqs(h.env(), "run")
	if code == 0 {
		t.Fatalf("prereqs run as a user with gcc and debootstrap missing succeeded:\n%s", out)
	}
	if calls := h.aptCalls(); calls != nil {
		t.Errorf("a user's run called apt-get: %q", calls)
	}
	const want = "\n    sudo apt-get update && sudo apt-get install -y --no-install-recommends gcc debootstrap\n"
	for _, s := range []string{want, "missing gcc for make build", "missing debootstrap for make image", "needs root"} {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q:\n%s", s, out)
		}
	}
}

// debootstrap lives in /usr/sbin, which a user's PATH lacks: it is found there, not asked for again.
func TestPrereqsFindsSbinOffPath(t *testing.T) {
	t.Parallel()
	h := newFakeHost(t, "1000", without("debootstrap")...)
	h.stub(h.sbin, "debootstrap", "exit 0")
	if out, code := h.prereqs(h.env(), "run"); code != 0 || out != "" {
		t.Fatalf("debootstrap in sbin: exit %d\n%s", code, out)
	}
}

// Go and Docker do not come from apt here: a missing one is named with where to get it.
// What apt can give is still installed first, as root.
func TestPrereqsNamesWhatAptCannotGive(t *testing.T) {
	t.Parallel()
	h := newFakeHost(t, "0", without("docker", "gcc")...)
	out, code := h.prereqs(h.env(), "test")
	if code == 0 {
		t.Fatalf("prereqs succeeded without docker:\n%s", out)
	}
	if !slices.Contains(h.aptCalls(), aptInstall+"gcc") {
		t.Errorf("gcc was not installed: %q", h.aptCalls())
	}
	if !strings.Contains(out, "docker: Docker Engine (https://docs.docker.com/engine/install/)") {
		t.Errorf("output does not name Docker Engine:\n%s", out)
	}
}

func TestPrereqsAptFailureIsShown(t *testing.T) {
	t.Parallel()
	h := newFakeHost(t, "0", without("curl")...)
	out, code := h.prereqs(h.env("FAKE_APT_FAIL=1"), "image")
	if code == 0 {
		t.Fatalf("prereqs succeeded though apt-get failed:\n%s", out)
	}
	for _, s := range []string{"E: Unable to fetch some archives", "apt-get failed; it ran: apt-get update && apt-get install -y --no-install-recommends curl"} {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q:\n%s", s, out)
		}
	}
}

func TestPrereqsRefusesUnknownPurpose(t *testing.T) {
	t.Parallel()
	h := newFakeHost(t, "0")
	if out, code := h.prereqs(h.env(), "tset"); code == 0 || !strings.Contains(out, "unknown purpose tset") || h.aptCalls() != nil {
		t.Fatalf("exit %d, apt %q:\n%s", code, h.aptCalls(), out)
	}
}

// make run, make test and the rest take the step first, and so do the image scripts run by
// hand (make install runs images/base/build.sh): on a fresh machine, as a user, each stops
// with the command to run before it builds anything or calls docker.
func TestMakeTargetsCheckPrereqsFirst(t *testing.T) {
	cases := []struct {
		argv []string
		pkgs string
	}{
		{[]string{"make", "run"}, "gcc git debootstrap gpgv curl"},
		{[]string{"make", "test"}, "gcc git busybox-static bash-static curl systemd btrfs-progs xfsprogs"},
		{[]string{"make", "testkit"}, "busybox-static bash-static"},
		{[]string{"make", "image"}, "debootstrap gpgv curl"},
		{[]string{"make", "build"}, "gcc git"},
		{[]string{"make", "bench"}, "gcc git busybox-static bash-static curl systemd btrfs-progs xfsprogs nginx caddy"},
		{[]string{"images/testkit/build.sh"}, "busybox-static bash-static"},
		{[]string{"images/base/build.sh"}, "debootstrap gpgv curl"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.argv, " "), func(t *testing.T) {
			t.Parallel()
			h := newFakeHost(t, "1000", "go", "make")
			// docker and go log any call: nothing may be built or run before the check.
			calls := filepath.Join(t.TempDir(), "calls.log")
			for _, name := range []string{"docker", "go"} {
				h.stub(h.bin, name, `echo "`+name+` $*" >>`+calls+`; exit 1`)
			}
			out, code := h.run(h.env(), c.argv[0], c.argv[1:]...)
			if code == 0 {
				t.Fatalf("%v succeeded on a fresh machine:\n%s", c.argv, out)
			}
			want := "sudo apt-get install -y --no-install-recommends " + c.pkgs + "\n"
			if !strings.Contains(out, want) {
				t.Errorf("%v output lacks %q:\n%s", c.argv, want, out)
			}
			if b, err := os.ReadFile(calls); err == nil {
				t.Errorf("%v ran before its prerequisites were there:\n%s", c.argv, b)
			}
		})
	}
}
