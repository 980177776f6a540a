package api

import "github.com/drover-dev/drover/internal/archive"

// MaxPackageSize is the largest package (.tar.gz) a pool accepts, in
// bytes: the body of PUT /v1/pools/{name}/packages.
const MaxPackageSize = 256 << 20

// PackageLimits bounds what one package may unpack to. The server checks an
// upload against them and every agent unpacks with them, so a package the
// server accepts is one every node can install. They are larger than the
// archive package's defaults: a deployment (a virtualenv, node_modules)
// holds many small files.
var PackageLimits = archive.Limits{
	MaxBytes:     4 << 30,
	MaxFiles:     200_000,
	MaxFileBytes: 2 << 30,
}

// Package is a package shipped to a pool's nodes: a .tar.gz unpacked into
// To on every node of the pool, those there now and those that join later.
// The newest package for a To replaces the one before it.
type Package struct {
	// SHA256 is the hex SHA-256 of the .tar.gz: the package's name.
	SHA256 string `json:"sha256"`
	// To is the absolute directory the package becomes on each node.
	To   string `json:"to"`
	Size int64  `json:"size"`
}
