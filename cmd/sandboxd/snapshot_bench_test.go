package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/internal/testutil"
	"github.com/sandboxd/sandboxd/lifecycle"
	"github.com/sandboxd/sandboxd/lifecycle/dockertest"
)

// newEnvAt is newEnv on the data dir data (a loop-mounted filesystem).
func newEnvAt(tb testing.TB, data string) *env {
	e := newEnv(tb)
	e.vars["SANDBOXD_DATA_DIR"] = data
	dockertest.CleanupInstance(tb, e.docker, lifecycle.InstanceOf(data))
	return e
}

// fillApp writes files files of size bytes in all into dir (50 directories of 20 of 50
// files, most small, a tenth four times the average), owned by uid.
func fillApp(tb testing.TB, dir string, files int, size int64, uid int) {
	per := size / int64(files)
	buf := make([]byte, per*4)
	for i := range buf {
		buf[i] = byte(i * 31)
	}
	for i := range files {
		sub := filepath.Join(dir, fmt.Sprintf("m%02d", i%50), fmt.Sprintf("s%02d", (i/50)%20))
		if i < 1000 {
			if err := os.MkdirAll(sub, 0o755); err != nil {
				tb.Fatal(err)
			}
			os.Lchown(filepath.Dir(sub), uid, uid)
			os.Lchown(sub, uid, uid)
		}
		n := per * 6 / 9
		if i%10 == 0 {
			n = per * 4
		}
		p := filepath.Join(sub, fmt.Sprintf("f%06d", i))
		buf[0] = byte(i)
		if err := os.WriteFile(p, buf[:n], 0o644); err != nil {
			tb.Fatal(err)
		}
		if err := os.Lchown(p, uid, uid); err != nil {
			tb.Fatal(err)
		}
	}
}

// previewPage is what port 3000 of sandbox id serves at path, "" until it answers 200.
func previewPage(d *daemon, id, path string) string {
	req, _ := http.NewRequest("GET", "http://"+d.HTTP+path, nil)
	req.Host = fmt.Sprintf("s-%s-3000.preview.localhost", id)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return ""
	}
	return string(b)
}

// BenchmarkFork times, on a workspace of 50,000 files and 300 MB (issue 18), a snapshot
// and a fork up to the fork's preview answering with the source's page, through the API
// of a sandboxd process, on three data dirs in one run: a loop-mounted btrfs (workspaces
// are subvolumes: subvolume snapshots), XFS with reflink=1 (reflinked trees) and the temp
// dir (full copies). The target is a fork on a copy-on-write filesystem, up to its preview
// answering, in at most 1 s.
func BenchmarkFork(b *testing.B) {
	const files, size = 50000, 300 << 20
	for _, fs := range []struct{ name, kind string }{{"btrfs", testutil.FSBtrfs}, {"xfs-reflink", testutil.FSXFSReflink}, {"tmp-copy", ""}} {
		b.Run(fs.name, func(b *testing.B) {
			data := b.TempDir()
			if fs.kind != "" {
				data = testutil.LoopFS(b, fs.kind, 3<<30)
			}
			e := newEnvAt(b, data)
			d := e.startProcess(nil).daemon
			mustCreate(b, d, map[string]any{"id": "src", "env": map[string]string{"PORT": "3100"},
				"services": []any{map[string]any{"name": "web", "cmd": []string{"devserver"}, "cwd": "workspace/app",
					"env": map[string]string{"PORT": "3000"}, "port": 3000}}})
			app := filepath.Join(data, "workspaces", "src", "workspace", "app")
			var st syscall.Stat_t
			if err := syscall.Stat(app, &st); err != nil {
				b.Fatal(err)
			}
			fillApp(b, app, files, size, int(st.Uid))
			const page = "<h1>the app</h1>"
			os.WriteFile(filepath.Join(app, "index.html"), []byte(page), 0o644)
			os.Lchown(filepath.Join(app, "index.html"), int(st.Uid), int(st.Uid))
			testutil.Eventually(b, time.Minute, "the source's page", func() bool { return previewPage(d, "src", "/file?path=index.html") == page })
			syscall.Sync()
			n := 0
			for b.Loop() {
				began := time.Now()
				var snap struct{ ID, Method string }
				if code := call(b, "POST", d.API+"/v1/sandboxes/src/snapshots", map[string]any{}, &snap); code != 201 {
					b.Fatalf("snapshot: %d", code)
				}
				snapTook := time.Since(began)
				id := fmt.Sprintf("fork%d", n)
				n++
				forked := d.logs.expect(`"msg":"sandbox forked"`)
				var reowned func(testing.TB, time.Duration) string
				if fs.kind == testutil.FSBtrfs { // the one copy that keeps its source's owners
					reowned = d.logs.expect(`"msg":"workspace given to its sandbox's uid","sandbox":"` + id + `"`)
				}
				began = time.Now()
				var fork sandboxJSON
				if code := call(b, "POST", d.API+"/v1/sandboxes/src/fork", map[string]any{"id": id}, &fork); code != 201 {
					b.Fatalf("fork: %d %+v", code, fork)
				}
				forkTook := time.Since(began)
				testutil.Eventually(b, 5*time.Minute, "the fork's page", func() bool { return previewPage(d, id, "/file?path=index.html") == page })
				previewTook := time.Since(began)
				b.ReportMetric(ms(snapTook), "snapshot-ms")
				b.ReportMetric(ms(forkTook), "fork-ms")
				b.ReportMetric(ms(previewTook), "fork-to-preview-ms")
				// The fork's own account: its copy, then the create (the copy given to the
				// fork's uid, one chown per file, and the container started).
				var phases struct {
					Copy   float64 `json:"copy_ms"`
					Create float64 `json:"create_ms"`
				}
				json.Unmarshal([]byte(forked(b, time.Minute)), &phases)
				b.ReportMetric(phases.Copy, "fork-copy-ms")
				b.ReportMetric(phases.Create, "fork-create-ms")
				if reowned != nil {
					var reown struct {
						Took float64 `json:"took_ms"`
					}
					json.Unmarshal([]byte(reowned(b, time.Minute)), &reown)
					b.ReportMetric(reown.Took, "fork-reown-ms")
				}
				b.Logf("%s: snapshot (%s) %s, fork %s (its copy %.0f ms, its create %.0f ms), fork to its preview answering %s", fs.name, snap.Method,
					snapTook.Round(time.Millisecond), forkTook.Round(time.Millisecond), phases.Copy, phases.Create, previewTook.Round(time.Millisecond))
			}
		})
	}
}
