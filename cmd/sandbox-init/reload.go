package main

import (
	"fmt"
	"os"
	"syscall"
)

// pollConfig reloads the config when its file changed since the last load.
// sandboxd replaces the file by rename and sends SIGHUP; polling its stat
// catches a lost SIGHUP and a file edited by hand.
func (s *supervisor) pollConfig() {
	if s.shutting || statSignature(s.opt.ConfigPath) == s.cfgSig {
		return
	}
	s.log.Printf("%s changed: reloading", s.opt.ConfigPath)
	s.reload()
}

// reload reads the config and applies it. A config that cannot be read or
// decoded means zero declared services; each distinct error is logged once,
// since a missing file is seen again at every poll.
func (s *supervisor) reload() {
	s.cfgSig = statSignature(s.opt.ConfigPath)
	specs, problems, err := loadConfig(s.opt.ConfigPath)
	if err != nil {
		if msg := err.Error(); msg != s.cfgErr {
			s.cfgErr = msg
			s.log.Printf("config: %v: no declared services", err)
		}
		specs = nil
	} else {
		s.cfgErr = ""
		for _, p := range problems {
			s.log.Printf("config: %s", p)
		}
		s.log.Printf("config: %d services declared", len(specs))
	}
	s.apply(specs)
}

// apply moves the declared services to specs: unchanged ones keep running
// untouched, removed ones are stopped, changed ones are stopped and then
// started with their new spec, new ones are started. main is left alone.
func (s *supervisor) apply(specs []Spec) {
	running := make(map[string]Spec, len(s.services))
	for name, svc := range s.services {
		if !svc.isMain && svc.want != nil {
			running[name] = *svc.want
		}
	}
	d := diffSpecs(running, specs)
	deadline := s.now().Add(removeTimeout)
	for _, spec := range d.Removed {
		svc := s.services[spec]
		svc.want = nil
		s.log.Printf("%s: removed from config, stopping", spec)
		s.stop(svc, syscall.SIGTERM, deadline)
	}
	for _, spec := range d.Changed {
		svc := s.services[spec.Name]
		svc.want = &spec
		s.log.Printf("%s: changed in config, restarting", spec.Name)
		s.stop(svc, syscall.SIGTERM, deadline) // then stopped starts the new spec
	}
	for _, spec := range d.Added {
		if svc := s.services[spec.Name]; svc != nil {
			// Removed earlier and still stopping: it starts again, with
			// this spec, once stopped.
			svc.want = &spec
			continue
		}
		svc := &service{spec: spec, want: &spec, log: s.newLog(spec.Name)}
		s.services[spec.Name] = svc
		s.start(svc)
	}
}

// statSignature identifies a version of the file at path: a rename gives a
// new inode, an edit a new size or mtime. An error is a version too, so a
// missing file is not reloaded at every poll.
func statSignature(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return "error: " + err.Error()
	}
	sig := fmt.Sprintf("size %d mtime %d", fi.Size(), fi.ModTime().UnixNano())
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		sig += fmt.Sprintf(" dev %d ino %d ctime %d.%d", st.Dev, st.Ino, st.Ctim.Sec, st.Ctim.Nsec)
	}
	return sig
}
