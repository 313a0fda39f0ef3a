package localcluster

// Pid is the process id of the running component, e.g. to read its memory
// from /proc/<pid>/status.
func (p *process) Pid() int { return p.cmd.Process.Pid }
