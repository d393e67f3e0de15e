package main

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// On a machine of two cores or more, the NRPE servers run on core 0 and
// this program, the client, on the others: each server then has one core
// to itself, and requests per second measure the server rather than how
// the client and the server share the machine.
const serverCPU = 0

// canPin reports whether the servers and the client can have cores apart.
func canPin() bool {
	if runtime.NumCPU() < 2 {
		return false
	}
	_, err := exec.LookPath("taskset")
	return err == nil
}

// onServerCPU returns the command line that runs path on the server's core.
func onServerCPU(path string, args ...string) (string, []string) {
	if !canPin() {
		return path, args
	}
	taskset, _ := exec.LookPath("taskset")
	return taskset, append([]string{"-c", strconv.Itoa(serverCPU), path}, args...)
}

// pinClient moves every thread of this process off the server's core (new
// threads inherit it) and returns how to undo that.
func pinClient() (restore func()) {
	if !canPin() {
		return func() {}
	}
	var old, client unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		return func() {}
	}
	client = old
	client.Clear(serverCPU)
	setAll := func(set *unix.CPUSet) {
		tasks, _ := filepath.Glob("/proc/self/task/*")
		for _, t := range tasks {
			if tid, err := strconv.Atoi(filepath.Base(t)); err == nil {
				unix.SchedSetaffinity(tid, set)
			}
		}
	}
	setAll(&client)
	return func() { setAll(&old) }
}
