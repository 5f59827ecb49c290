//go:build !unix

package main

import (
	"os"
	"syscall"
)

// sigTerm is all other systems offer; serve is killed rather than stopped there.
var sigTerm os.Signal = os.Kill

func serveProcAttr() *syscall.SysProcAttr { return nil }
