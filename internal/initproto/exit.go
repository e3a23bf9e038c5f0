package initproto

import (
	"fmt"
	"strconv"
	"strings"
)

// ExitSuffix names a logged exec's exit file: `sandbox-init exec --log FILE` writes the
// command's exit code to FILE+ExitSuffix, atomically, once the command has ended.
const ExitSuffix = ".exit"

// MaxExitSize bounds how much of an exit file is read: a decimal int and nothing more.
const MaxExitSize = 32

// ExitFile is the exit file of the exec logging to logFile.
func ExitFile(logFile string) string { return logFile + ExitSuffix }

// FormatExitCode is an exit file's content: the code in decimal, no newline. A command a
// signal killed has code 128+signal.
func FormatExitCode(code int) []byte { return []byte(strconv.Itoa(code)) }

// ParseExitCode reads an exit file's content. Surrounding white space is tolerated.
func ParseExitCode(b []byte) (int, error) {
	code, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("exit file holds %q, not an exit code", b)
	}
	return code, nil
}
