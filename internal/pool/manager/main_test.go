package manager_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package on leaked goroutines: every store a test
// opens is closed, and no test leaves a manager loop running.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
