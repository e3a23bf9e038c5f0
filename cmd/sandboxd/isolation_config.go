package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/sandboxd/sandboxd/store"
)

// isolationConfig is issue 12's part of the configuration: disk quotas, the range sandbox
// uids come from, and the key that seals env values at rest.
type isolationConfig struct {
	DiskQuota     int64 // bytes; 0: none
	DiskQuotaMax  int64 // 0: DiskQuota
	InodeQuota    int64 // 0: none
	DiskScanEvery time.Duration
	UIDFirst      int
	UIDLast       int
	Key           []byte   // SANDBOXD_SECRET_KEY; nil: the key file in the data dir
	PreviousKeys  [][]byte // SANDBOXD_SECRET_KEY_PREVIOUS, during a rotation

	// The keys as given: parsed by validate, whose errors never repeat them (loadConfig's
	// would quote the value).
	key, previous string
}

// isolationSettings are the variables of isolationConfig, in the table of loadConfig.
func isolationSettings(c *isolationConfig) []setting {
	return []setting{
		{"SANDBOXD_DISK_QUOTA", "disk-quota", "10G", "disk quota of each sandbox, bytes with a unit like 10G (0: none)", sizeParser(&c.DiskQuota)},
		{"SANDBOXD_DISK_QUOTA_MAX", "disk-quota-max", "", `largest "disk" a create may ask for (default: SANDBOXD_DISK_QUOTA)`, func(v string) error {
			if v == "" {
				return nil
			}
			return sizeParser(&c.DiskQuotaMax)(v)
		}},
		{"SANDBOXD_INODE_QUOTA", "inode-quota", "1000000", "files and directories each sandbox may have (0: no limit)", func(v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return fmt.Errorf("want a whole number ≥ 0")
			}
			c.InodeQuota = n
			return nil
		}},
		{"SANDBOXD_DISK_SCAN_INTERVAL", "disk-scan-interval", "1m", "how often disk usage is measured (stretched to keep the scan under 1% of a CPU)", durParser(&c.DiskScanEvery, time.Second)},
		{"SANDBOXD_UID_RANGE", "uid-range", "200000-299999", "uids sandboxes run as, first-last; no host account may use one", func(v string) error {
			first, last, ok := strings.Cut(v, "-")
			a, err1 := strconv.Atoi(first)
			b, err2 := strconv.Atoi(last)
			if !ok || err1 != nil || err2 != nil || a < 1000 || b < a || b > 1<<31-2 {
				return fmt.Errorf("want first-last, like 200000-299999, with 1000 ≤ first ≤ last < 2147483647")
			}
			c.UIDFirst, c.UIDLast = a, b
			return nil
		}},
		{"SANDBOXD_SECRET_KEY", "secret-key", "", "base64 of 32 random bytes that seal env values at rest (empty: <data dir>/secret.key, made at first start); prefer the env file to the flag", strParser(&c.key)},
		{"SANDBOXD_SECRET_KEY_PREVIOUS", "secret-key-previous", "", "comma-separated keys that sealed values before a rotation; values are sealed again with the current key at start", strParser(&c.previous)},
	}
}

// validate parses the keys and checks the uid range against the host's accounts.
func (c *isolationConfig) validate(passwd, subuid io.Reader) (warnings []warning, err error) {
	if c.key != "" {
		if c.Key, err = store.ParseKey(c.key); err != nil {
			return nil, fmt.Errorf("SANDBOXD_SECRET_KEY: %v", err)
		}
	}
	for i, k := range strings.Split(c.previous, ",") {
		if strings.TrimSpace(k) == "" {
			continue
		}
		key, err := store.ParseKey(k)
		if err != nil {
			return nil, fmt.Errorf("SANDBOXD_SECRET_KEY_PREVIOUS: key %d: %v", i+1, err)
		}
		c.PreviousKeys = append(c.PreviousKeys, key)
	}
	if len(c.PreviousKeys) > 0 && c.Key == nil {
		return nil, fmt.Errorf("SANDBOXD_SECRET_KEY_PREVIOUS is set but SANDBOXD_SECRET_KEY is not: a rotation names the new key too")
	}
	if c.DiskQuotaMax > 0 && c.DiskQuota > c.DiskQuotaMax {
		return nil, fmt.Errorf("SANDBOXD_DISK_QUOTA=%d is above SANDBOXD_DISK_QUOTA_MAX=%d", c.DiskQuota, c.DiskQuotaMax)
	}
	if passwd != nil {
		for _, a := range accountsIn(passwd) {
			if a.id >= c.UIDFirst && a.id <= c.UIDLast {
				return nil, fmt.Errorf("SANDBOXD_UID_RANGE=%d-%d holds uid %d of host account %q: sandbox files would belong to it; choose a range no account uses",
					c.UIDFirst, c.UIDLast, a.id, a.name)
			}
		}
	}
	if subuid != nil {
		for _, r := range subordinateRanges(subuid) {
			if r.first <= c.UIDLast && r.last >= c.UIDFirst {
				warnings = append(warnings, warning{"SANDBOXD_UID_RANGE overlaps the subordinate uids of a host account (/etc/subuid): its rootless containers may run as sandbox uids",
					[]any{"range", fmt.Sprintf("%d-%d", c.UIDFirst, c.UIDLast), "account", r.name, "subuids", fmt.Sprintf("%d-%d", r.first, r.last)}})
			}
		}
	}
	return warnings, nil
}

type account struct {
	name string
	id   int
}

// accountsIn reads the uids of an /etc/passwd.
func accountsIn(r io.Reader) []account {
	var out []account
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) < 3 {
			continue
		}
		if id, err := strconv.Atoi(f[2]); err == nil {
			out = append(out, account{f[0], id})
		}
	}
	return out
}

type subRange struct {
	name        string
	first, last int
}

// subordinateRanges reads /etc/subuid: name:first:count lines.
func subordinateRanges(r io.Reader) []subRange {
	var out []subRange
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) != 3 {
			continue
		}
		first, err1 := strconv.Atoi(f[1])
		n, err2 := strconv.Atoi(f[2])
		if err1 == nil && err2 == nil && n > 0 {
			out = append(out, subRange{f[0], first, first + n - 1})
		}
	}
	return out
}

// openIfPresent opens a host file for validate; a missing one reads as nil.
func openIfPresent(path string) io.ReadCloser {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	return f
}
