package main

import (
	"errors"
	"os"
	"syscall"
)

// prSetChildSubreaper is PR_SET_CHILD_SUBREAPER from <linux/prctl.h>.
const prSetChildSubreaper = 36

// becomeSubreaper makes orphaned descendants reparent to this process rather
// than to the real PID 1, so the supervisor reaps them (and sees them) when
// it is not PID 1 itself: in tests, or under another init.
func becomeSubreaper() error {
	if os.Getpid() == 1 {
		return nil
	}
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		return os.NewSyscallError("prctl(PR_SET_CHILD_SUBREAPER)", errno)
	}
	return nil
}

// reapAll collects every child that has exited, without blocking, and
// reports each to fn. It is the only place this process waits for children:
// a wait4(-1) loop steals exit statuses from anything else that waits for a
// specific pid (os/exec's Cmd.Wait), so the supervisor starts processes with
// syscall.ForkExec and learns of every exit here, by pid.
func reapAll(fn func(pid int, ws syscall.WaitStatus)) {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil || pid <= 0 { // ECHILD: no children; 0: none exited yet
			return
		}
		fn(pid, ws)
	}
}

// signalGroup sends sig to process group pgid. It reports whether the group
// still had members.
func signalGroup(pgid int, sig syscall.Signal) bool {
	if pgid <= 1 {
		return false
	}
	return syscall.Kill(-pgid, sig) == nil
}

// groupAlive reports whether process group pgid has any member left,
// zombies included.
func groupAlive(pgid int) bool {
	return signalGroup(pgid, 0)
}
