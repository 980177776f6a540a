package archive_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/drover-dev/drover/internal/archive"
)

// The caller owns the directory: it makes a fresh one, and removes it at
// least when extraction fails, since what was written up to the error
// stays there.
func ExampleExtract() {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range []string{"input/data.csv", "../../etc/cron.d/evil"} {
		_ = tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: 3})
		_, _ = tw.Write([]byte("a,b"))
	}
	_ = tw.Close()

	dir, err := os.MkdirTemp("", "sandbox-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	res, err := archive.Extract(context.Background(), &buf, int64(buf.Len()), dir, archive.Limits{MaxFiles: 100})
	var ee *archive.ExtractError
	if errors.As(err, &ee) && errors.Is(err, archive.ErrUnsafePath) {
		fmt.Printf("refused %q after %d file\n", ee.Entry, res.Files)
	}
	_, err = os.Stat(filepath.Join(dir, "input/data.csv"))
	fmt.Println("written before the error:", err == nil)
	// Output:
	// refused "../../etc/cron.d/evil" after 1 file
	// written before the error: true
}
