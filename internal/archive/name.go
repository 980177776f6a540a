package archive

import (
	"fmt"
	"strings"
)

// cleanName checks the entry name raw against the rules of the package doc
// and returns it in canonical form: elements joined by "/", with empty and
// "." elements dropped. It returns "" for the extraction root itself ("."
// or "./"), which only a directory entry may name.
func cleanName(raw string, lim Limits) (string, error) {
	if raw == "" {
		return "", fmt.Errorf("%w: empty name", ErrUnsafePath)
	}
	if len(raw) > lim.MaxNameLen {
		return "", limitError("name is %d bytes, over %d", len(raw), lim.MaxNameLen)
	}
	if err := checkChars(raw); err != nil {
		return "", fmt.Errorf("%w: %w", ErrUnsafePath, err)
	}
	if raw[0] == '/' {
		return "", fmt.Errorf("%w: absolute name", ErrUnsafePath)
	}
	elems := make([]string, 0, strings.Count(raw, "/")+1)
	for e := range strings.SplitSeq(raw, "/") {
		switch {
		case e == "" || e == ".":
			continue
		case e == "..":
			return "", fmt.Errorf("%w: \"..\" element", ErrUnsafePath)
		case len(e) > lim.maxElementLen():
			return "", limitError("name element is %d bytes, over %d", len(e), lim.maxElementLen())
		}
		elems = append(elems, e)
	}
	if len(elems) > lim.MaxDepth {
		return "", limitError("name has %d elements, over %d", len(elems), lim.MaxDepth)
	}
	return strings.Join(elems, "/"), nil
}

// checkTarget checks the target of the symbolic link name before it is
// resolved: it must be relative, free of backslashes and control
// characters, and must not climb above the directory by its own ".."
// elements. Whether it escapes through other links is decided by
// extractor.resolve once every link is known.
func checkTarget(name, target string, lim Limits) error {
	if target == "" {
		return fmt.Errorf("%w: empty target", ErrUnsafeLink)
	}
	if len(target) > lim.MaxNameLen {
		return limitError("link target is %d bytes, over %d", len(target), lim.MaxNameLen)
	}
	if err := checkChars(target); err != nil {
		return fmt.Errorf("%w: target: %w", ErrUnsafeLink, err)
	}
	if target[0] == '/' {
		return fmt.Errorf("%w: absolute target", ErrUnsafeLink)
	}
	depth := strings.Count(name, "/") // elements of the link's parent
	for e := range strings.SplitSeq(target, "/") {
		switch e {
		case "", ".":
		case "..":
			if depth--; depth < 0 {
				return fmt.Errorf("%w: target leads outside the directory", ErrUnsafeLink)
			}
		default:
			depth++
		}
	}
	return nil
}

// checkChars refuses the characters no entry name or link target may hold:
// NUL and other control characters, which truncate names in C and rewrite
// terminals (SECURITY.md S7), and backslashes (see the package doc).
func checkChars(s string) error {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			return fmt.Errorf("backslash at byte %d", i)
		case c < 0x20 || c == 0x7f:
			return fmt.Errorf("control character %#02x at byte %d", c, i)
		}
	}
	return nil
}
