package lifecycle

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/sandboxd/sandboxd/internal/btrfs"
	"github.com/sandboxd/sandboxd/store"
	"golang.org/x/sys/unix"
)

// Disk quotas (issue 12: one sandbox's dd grew the host's disk by 2 GiB, the disk that also
// holds the database and Docker's data). Each sandbox has a quota in bytes (Config.DiskQuota,
// or the "disk" of its create body) and one in inodes (Config.InodeQuota), over its whole
// home: the workspace and the state dir in it. The run dir's few small files are sandboxd's.
//
// Where the kernel can enforce the bytes, it does: on a btrfs data dir each workspace is a
// subvolume with a qgroup limit, and a write past it fails with EDQUOT inside the sandbox.
// Elsewhere the quota is checked, not enforced: usage is measured periodically (DiskSweep)
// and a sandbox over its quota is stopped with reason disk_quota; starting it is refused
// until files are removed through the files API. Inodes are counted by the same scan on
// every filesystem (btrfs has no inode limit; each file's metadata does count against its
// byte limit, about 350 bytes an empty file).

// How a sandbox's byte quota is enforced: DiskUsage.Enforced.
const (
	EnforcedBtrfs = "btrfs" // the kernel: a btrfs qgroup limit
	EnforcedScan  = "scan"  // sandboxd: measured periodically, stopped when over
	EnforcedNone  = "none"  // no byte quota
)

// CodeDiskQuota is a start refused because the sandbox is over its disk quota.
const CodeDiskQuota Code = "disk_quota"

// reasonDiskQuota is the stop reason of a sandbox over its quota (Observer.Stopped).
const reasonDiskQuota = "disk_quota"

const (
	// stateReserve is the limit of the state dir's own subvolume on btrfs: room for
	// sandbox-init's state and the service (2 MiB each, rotated), exec and task logs that
	// the workspace's quota must not starve. Host usage per sandbox is at most its quota
	// plus this.
	stateReserve = 128 << 20
	// minDiskQuota is the smallest quota a sandbox may ask for.
	minDiskQuota = 16 << 20
	// scanBudget keeps the scan under 1% of a CPU: after a pass that took d, the next
	// waits at least scanBudget*d, whatever Loops.Disk says. A pass costs a little more CPU
	// than its wall time (the kernel's stat work, the GC's threads): 4.62 CPU-s for 4.51 s
	// over 200×10k files in make bench, so 100×d was 1.02%; 125×d keeps a margin.
	scanBudget = 125
	// xfsSuperMagic is the statfs f_type of XFS, named in initDisk's log line.
	xfsSuperMagic = 0x58465342
)

// diskFS is what the data dir's filesystem does for quotas; Boot finds it out.
type diskFS struct {
	kind    string // EnforcedBtrfs or EnforcedScan
	qgroups btrfs.QgroupSysfs
	seccomp string // the containers' seccomp profile on btrfs (seccomp.go)
}

// diskState is a sandbox's disk as last measured; guarded by Manager.mu.
type diskState struct {
	usage    store.DiskUsage
	measured bool
	over     string // why the sandbox is over its quota; "" when it is not
}

// initDisk finds out how quotas can be enforced on the data dir, turns btrfs qgroups on
// when they can, and says which in one log line.
func (m *Manager) initDisk() error {
	parent := m.workspacesDir()
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return internal(err, "create workspaces dir")
	}
	var st unix.Statfs_t
	if err := unix.Statfs(parent, &st); err != nil {
		return internal(err, "statfs %s", parent)
	}
	why := ""
	switch st.Type {
	case btrfs.SuperMagic:
		d, err := btrfsQuotas(parent)
		if err == nil {
			m.disk = d
			break
		}
		why = "btrfs qgroups could not be used: " + err.Error()
	case xfsSuperMagic:
		why = "sandboxd does not use XFS project quotas (this kernel cannot test them)"
	default:
		why = fsName(st.Type) + " has no per-directory quota sandboxd uses; btrfs has"
	}
	if m.disk.kind == "" {
		m.disk.kind = EnforcedScan
	}
	scan := m.diskEvery().String()
	switch {
	case m.cfg.DiskQuota == 0 && m.cfg.MaxDiskQuota == 0 && m.cfg.InodeQuota == 0:
		m.log.Info("disk quotas: off (SANDBOXD_DISK_QUOTA=0, SANDBOXD_INODE_QUOTA=0)")
	case m.disk.kind == EnforcedBtrfs:
		m.log.Info("disk quotas: enforced by the kernel (btrfs qgroups): a write past a sandbox's quota fails with EDQUOT inside it",
			"workspaces", parent, "quota", formatBytes(m.cfg.DiskQuota), "inode_quota", m.cfg.InodeQuota, "inodes_counted_every", scan)
	default:
		m.log.Warn("disk quotas: NOT enforced by the kernel on this data dir; usage is measured every "+scan+
			" and a sandbox over its quota is stopped (reason disk_quota), and cannot start until files are removed",
			"why", why, "workspaces", parent, "quota", formatBytes(m.cfg.DiskQuota), "inode_quota", m.cfg.InodeQuota)
	}
	return nil
}

// fsName names a filesystem by its statfs magic, for the log line.
func fsName(magic int64) string {
	switch magic {
	case 0xef53:
		return "ext4 (or ext2/3)"
	case 0x01021994:
		return "tmpfs"
	case 0x794c7630:
		return "overlayfs"
	case 0x2fc12fc1:
		return "zfs"
	}
	return fmt.Sprintf("the filesystem (statfs type %#x)", magic)
}

func (m *Manager) diskEvery() time.Duration {
	if m.cfg.DiskScanEvery > 0 {
		return m.cfg.DiskScanEvery
	}
	return time.Minute
}

// quotaOf is sb's byte quota: its own, or the operator's default; 0 is none.
func (m *Manager) quotaOf(sb store.Sandbox) int64 {
	if sb.DiskBytes > 0 {
		return sb.DiskBytes
	}
	return m.cfg.DiskQuota
}

// checkDiskRequest validates the disk quota of a create.
func (m *Manager) checkDiskRequest(req *CreateRequest) error {
	limit := m.cfg.MaxDiskQuota
	if limit == 0 {
		limit = m.cfg.DiskQuota
	}
	switch {
	case req.DiskBytes < 0:
		return errorf(CodeInvalid, "disk must be positive")
	case req.DiskBytes == 0:
	case req.DiskBytes < minDiskQuota:
		return errorf(CodeInvalid, "disk %s is less than the minimum of %s", formatBytes(req.DiskBytes), formatBytes(minDiskQuota))
	case limit > 0 && req.DiskBytes > limit:
		return errorf(CodeInvalid, "disk %s is more than the limit of %s", formatBytes(req.DiskBytes), formatBytes(limit))
	}
	return nil
}

// measureDisk measures sb's home and says why it is over its quota ("" when it is not).
// It reads the tree only and takes no lock: the sandbox may be running.
func (m *Manager) measureDisk(sb store.Sandbox) (store.DiskUsage, string) {
	quota := m.quotaOf(sb)
	u := store.DiskUsage{Quota: quota, InodeQuota: m.cfg.InodeQuota, Enforced: EnforcedScan}
	kernel := false
	if m.disk.kind == EnforcedBtrfs {
		if used, ok := m.btrfsUsed(sb.ID); ok {
			u.Used, u.Enforced, kernel = used, EnforcedBtrfs, true
		}
	}
	if quota == 0 {
		u.Enforced = EnforcedNone
	}
	t, err := scanTree(m.workspaceDir(sb.ID), !kernel, m.cfg.InodeQuota)
	if err != nil {
		return u, "" // no workspace (yet, or any more)
	}
	if !kernel {
		u.Used = t.Bytes
	}
	u.Inodes = t.Inodes
	snapsOver := m.addSnapshots(sb, &u, u.Used) // issue 18: snapshots count too
	switch {
	case t.Unmeasurable != "":
		return u, t.Unmeasurable
	case snapsOver != "":
		return u, snapsOver
	case !kernel && quota > 0 && u.Used > quota:
		return u, fmt.Sprintf("it uses %s of its %s disk quota", formatBytes(u.Used), formatBytes(quota))
	case m.cfg.InodeQuota > 0 && u.Inodes > m.cfg.InodeQuota:
		return u, fmt.Sprintf("it has more than %d files and directories, its inode quota", m.cfg.InodeQuota)
	}
	return u, ""
}

func (m *Manager) recordDisk(id string, u store.DiskUsage, over string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if l, ok := m.sandboxes[id]; ok {
		l.disk = diskState{usage: u, measured: true, over: over}
	}
}

// quotasOn reports whether there is any quota to check.
func (m *Manager) quotasOn() bool {
	return m.cfg.DiskQuota > 0 || m.cfg.MaxDiskQuota > 0 || m.cfg.InodeQuota > 0
}

// DiskSweep is one pass of the quota scan: it measures every running or paused sandbox
// (and those not measured yet, or over their quota) and stops each running or paused one
// that is over, with reason disk_quota. It returns the ids it stopped.
func (m *Manager) DiskSweep(ctx context.Context) (stopped []string) {
	if !m.quotasOn() {
		return nil
	}
	m.mu.RLock()
	var todo []store.Sandbox
	for _, l := range m.sandboxes {
		if alive(l.sb.Status) || !l.disk.measured || l.disk.over != "" {
			todo = append(todo, l.sb)
		}
	}
	m.mu.RUnlock()
	for _, sb := range todo {
		if ctx.Err() != nil {
			return stopped
		}
		u, over := m.measureDisk(sb)
		m.recordDisk(sb.ID, u, over)
		if over == "" || !alive(sb.Status) { // issue 14: a paused one holds its files too
			continue
		}
		if err := m.stop(ctx, sb.ID, reasonDiskQuota); err != nil {
			m.log.Warn("stop a sandbox over its disk quota", "sandbox", sb.ID, "err", err)
			continue
		}
		m.log.Info("stopped a sandbox over its disk quota", "sandbox", sb.ID, "why", over)
		stopped = append(stopped, sb.ID)
	}
	return stopped
}

// diskLoop runs DiskSweep at once (usage after a restart) and then every Loops.Disk, or
// scanBudget times as long as the last pass took, whichever is longer.
func (m *Manager) diskLoop(ctx context.Context, every time.Duration) error {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		began := time.Now()
		m.DiskSweep(ctx)
		took := time.Since(began)
		m.lastScan.Store(int64(took))
		t.Reset(max(every, took*scanBudget))
	}
}

// LastDiskScan is how long the last pass of the quota scan took.
func (m *Manager) LastDiskScan() time.Duration { return time.Duration(m.lastScan.Load()) }

// DiskEnforcement is how byte quotas are enforced on this data dir: btrfs or scan.
func (m *Manager) DiskEnforcement() string { return m.disk.kind }

// checkDisk refuses to start a sandbox that was over its quota and still is: it measures
// again first, as files may have been removed through the files API since.
func (m *Manager) checkDisk(sb store.Sandbox) error {
	if m.diskOver(sb.ID) == "" {
		return nil
	}
	u, over := m.measureDisk(sb)
	m.recordDisk(sb.ID, u, over)
	if over == "" {
		return nil
	}
	return errorf(CodeDiskQuota, "sandbox %s is over its disk quota: %s. Remove files through the files API "+
		"(DELETE /v1/sandboxes/%s/files?path=...), then start it again", sb.ID, over, sb.ID)
}

// diskOver is why a sandbox is over its quota, "" when it is not (as last measured).
func (m *Manager) diskOver(id string) string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if l, ok := m.sandboxes[id]; ok {
		return l.disk.over
	}
	return ""
}

// diskView is the disk of sb as the API shows it: the last measurement, or what is known
// before the first.
func (m *Manager) diskView(sb store.Sandbox) store.DiskUsage {
	m.mu.RLock()
	l, ok := m.sandboxes[sb.ID]
	var d diskState
	if ok {
		d = l.disk
	}
	m.mu.RUnlock()
	if d.measured {
		return d.usage
	}
	u := store.DiskUsage{Quota: m.quotaOf(sb), InodeQuota: m.cfg.InodeQuota, Enforced: m.disk.kind}
	if u.Quota == 0 {
		u.Enforced = EnforcedNone
	}
	return u
}

// DiskUsages is the last measured disk of every sandbox, for metrics.
func (m *Manager) DiskUsages() map[string]store.DiskUsage {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make(map[string]store.DiskUsage, len(m.sandboxes))
	for id, l := range m.sandboxes {
		if l.disk.measured {
			out[id] = l.disk.usage
		}
	}
	return out
}
