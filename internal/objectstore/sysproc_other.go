//go:build !linux

package objectstore

import "syscall"

// sysProcAttr puts the store in a process group of its own, so that a Ctrl-C
// in the terminal reaches only its parent, which stops it in order. Outside
// Linux there is no parent-death signal: a parent that dies without calling
// Stop leaves the store running.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
