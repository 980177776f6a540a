// Package examples holds drover's runnable example files, embedded so the
// binary's demo and the tests use the same files a user reads.
package examples

import "embed"

// FS holds every example file.
//
//go:embed *.yaml
var FS embed.FS
