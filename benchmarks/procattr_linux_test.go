package benchmarks

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes cmd's process be killed when this one dies, so that
// a test killed midway (a closed pipe, a timeout) leaves no server behind.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
