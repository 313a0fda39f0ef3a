package objectstore

import "syscall"

// sysProcAttr puts the store in a process group of its own, so that a Ctrl-C
// in the terminal reaches only its parent, which stops it in order, and has
// the kernel kill it when its parent dies without stopping it.
//
// Pdeathsig fires when the thread that started the process exits; Go's
// runtime keeps its threads for the life of the process unless a goroutine
// exits while locked to one, which this package never does.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
