package main

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sandboxd/sandboxd/lifecycle"
)

// diskCollector reports each sandbox's disk usage and quotas as last measured, the quota
// scan's last duration and how quotas are enforced (issue 12), from the manager's memory
// at each scrape.
type diskCollector struct {
	mgr                                       *lifecycle.Manager
	used, quota, inodes, inodeQuota, scan, on *prometheus.Desc
}

func newDiskCollector(mgr *lifecycle.Manager) *diskCollector {
	per := []string{"sandbox"}
	return &diskCollector{
		mgr:        mgr,
		used:       prometheus.NewDesc("sandboxd_sandbox_disk_used_bytes", "Disk a sandbox uses, as last measured.", per, nil),
		quota:      prometheus.NewDesc("sandboxd_sandbox_disk_quota_bytes", "A sandbox's disk quota (0: none).", per, nil),
		inodes:     prometheus.NewDesc("sandboxd_sandbox_inodes", "Files and directories of a sandbox, as last counted.", per, nil),
		inodeQuota: prometheus.NewDesc("sandboxd_sandbox_inode_quota", "A sandbox's inode quota (0: none).", per, nil),
		scan:       prometheus.NewDesc("sandboxd_disk_scan_seconds", "How long the last pass of the quota scan took.", nil, nil),
		on:         prometheus.NewDesc("sandboxd_disk_quota_enforcement", "Always 1; enforced says how byte quotas hold: btrfs (the kernel) or scan.", []string{"enforced"}, nil),
	}
}

func (c *diskCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.used, c.quota, c.inodes, c.inodeQuota, c.scan, c.on} {
		ch <- d
	}
}

func (c *diskCollector) Collect(ch chan<- prometheus.Metric) {
	for id, u := range c.mgr.DiskUsages() {
		ch <- prometheus.MustNewConstMetric(c.used, prometheus.GaugeValue, float64(u.Used), id)
		ch <- prometheus.MustNewConstMetric(c.quota, prometheus.GaugeValue, float64(u.Quota), id)
		ch <- prometheus.MustNewConstMetric(c.inodes, prometheus.GaugeValue, float64(u.Inodes), id)
		ch <- prometheus.MustNewConstMetric(c.inodeQuota, prometheus.GaugeValue, float64(u.InodeQuota), id)
	}
	ch <- prometheus.MustNewConstMetric(c.scan, prometheus.GaugeValue, c.mgr.LastDiskScan().Seconds())
	if e := c.mgr.DiskEnforcement(); e != "" {
		ch <- prometheus.MustNewConstMetric(c.on, prometheus.GaugeValue, 1, e)
	}
}
