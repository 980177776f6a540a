package sshprov

import (
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// binaries hashes local drover binaries, once per version of the file:
// the server's own executable may be replaced while it runs (an upgrade),
// so the hash is keyed by size and modification time, not computed once.
type binaries struct {
	mu    sync.Mutex
	known map[string]binaryInfo // by path; guarded by mu
}

// binaryInfo is what the provider knows of one local binary.
type binaryInfo struct {
	size    int64
	modTime time.Time
	sha256  string
	// machine is uname -m's name for the binary's architecture ("" if
	// unknown, which skips the check).
	machine []string
}

// info returns the binary's hash and architecture.
func (b *binaries) info(path string) (binaryInfo, error) {
	st, err := os.Stat(path)
	if err != nil {
		return binaryInfo{}, fmt.Errorf("drover binary: %w", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if bi, ok := b.known[path]; ok && bi.size == st.Size() && bi.modTime.Equal(st.ModTime()) {
		return bi, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return binaryInfo{}, fmt.Errorf("drover binary: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return binaryInfo{}, fmt.Errorf("drover binary: read %s: %w", path, err)
	}
	ef, err := elf.NewFile(f)
	if err != nil {
		return binaryInfo{}, fmt.Errorf("drover binary: %s is not a Linux executable: %w", path, err)
	}
	bi := binaryInfo{size: st.Size(), modTime: st.ModTime(), sha256: hex.EncodeToString(h.Sum(nil)), machine: unameMachines(ef.Machine)}
	if b.known == nil {
		b.known = map[string]binaryInfo{}
	}
	b.known[path] = bi
	return bi, nil
}

// unameMachines are the names `uname -m` gives an ELF machine.
func unameMachines(m elf.Machine) []string {
	switch m {
	case elf.EM_X86_64:
		return []string{"x86_64", "amd64"}
	case elf.EM_AARCH64:
		return []string{"aarch64", "arm64"}
	case elf.EM_386:
		return []string{"i386", "i486", "i586", "i686"}
	case elf.EM_RISCV:
		return []string{"riscv64"}
	case elf.EM_PPC64:
		return []string{"ppc64le", "ppc64"}
	case elf.EM_S390:
		return []string{"s390x"}
	}
	return nil
}

// checkPlatform returns an error if a host's `uname -s -m` cannot run
// the binary.
func (bi binaryInfo) checkPlatform(uname string) error {
	kernel, machine, _ := strings.Cut(strings.TrimSpace(uname), " ")
	if kernel != "Linux" {
		return fmt.Errorf("the host runs %q, and the drover binary is for Linux", kernel)
	}
	if len(bi.machine) == 0 {
		return nil
	}
	for _, m := range bi.machine {
		if m == machine {
			return nil
		}
	}
	return fmt.Errorf("the host is %s, and the drover binary is for %s", machine, bi.machine[0])
}
