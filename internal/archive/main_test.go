package archive

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package on leaked goroutines: every archive stream a
// test generates must stop when the extraction does.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
