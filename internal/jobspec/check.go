package jobspec

import (
	"cmp"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/drover-dev/drover/internal/job"
)

// checker walks a document's node tree against the Go type it will be
// decoded into, before yaml decodes it. yaml's own errors name a line and a
// Go type ("line 5: field timeot not found in type api.TaskSpec"); the
// checker names the field's path in the file instead ("task.timeot"), and
// finds every problem, not only those yaml collects. It is also stricter
// than yaml in one place: yaml truncates 2.5 into an int field, the checker
// refuses any number that is not a whole one.
//
// Along the way it records the line of every field it visits, so that the
// problems found later in a field's value (a bad duration, a broken rule)
// can name the line too. It collects those problems as well, so that all of
// them come out as one error, in the order of the file.
type checker struct {
	problems []problem
	lines    map[string]int // field path → line of its value
	// hidden holds the paths whose values yaml will not decode, or not
	// whole: those of the problems, and of mappings with a key given twice.
	// Nothing more is said about the fields within them.
	hidden map[string]bool
	// budget is how many more nodes the checker may visit. Aliases let a
	// small file expand into billions of nodes; yaml guards its decoder
	// against that, and this guards the checker.
	budget int
}

// problem is what is wrong with one field.
type problem struct {
	field, msg string
	line       int  // where the field, or the nearest enclosing one, is written
	isExact    bool // whether line is the field's own
}

// newChecker returns a checker for the tree under root.
func newChecker(root *yaml.Node) *checker {
	return &checker{lines: map[string]int{}, hidden: map[string]bool{}, budget: 1000 + 10*countNodes(root)}
}

// countNodes counts the nodes under n without following aliases.
func countNodes(n *yaml.Node) int {
	c := 1
	for _, k := range n.Content {
		c += countNodes(k)
	}
	return c
}

// check checks that n can be decoded into a value of type t, and records
// a problem under path for each part that cannot.
func (c *checker) check(n *yaml.Node, t reflect.Type, path string) {
	if c.budget--; c.budget < 0 {
		return
	}
	// The last visit wins: a mapping's own keys come after those it
	// merges, and override them.
	c.lines[path] = n.Line
	c.checkValue(resolve(n), t, path)
}

// checkValue checks n, which is not an alias, like check.
func (c *checker) checkValue(n *yaml.Node, t reflect.Type, path string) {
	if n.ShortTag() == "!!null" {
		return // yaml leaves the zero value, which conversion treats as absent
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			c.bad(path, n, "must be a mapping of fields, not %s", describe(n))
			return
		}
		fields := yamlFields(t)
		c.mapping(n, path, func(key *yaml.Node, val *yaml.Node) {
			if key.Kind != yaml.ScalarNode {
				c.badKey(path, key, "field names must be strings, not %s", describe(key))
				return
			}
			f, ok := fields[key.Value]
			if !ok {
				c.bad(join(path, key.Value), key, "unknown field%s", suggest(key.Value, fields))
				return
			}
			c.check(val, f.Type, join(path, key.Value))
		})
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			c.bad(path, n, "must be a mapping of names to values, not %s", describe(n))
			return
		}
		c.mapping(n, path, func(key *yaml.Node, val *yaml.Node) {
			if key = resolve(key); key.Kind != yaml.ScalarNode {
				c.badKey(path, key, "names must be strings, not %s", describe(key))
				return
			}
			c.checkValue(key, t.Key(), path)
			// The same path as Validate gives ("task.env.HOME").
			c.check(val, t.Elem(), path+"."+key.Value)
		})
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			c.bad(path, n, "must be a list, not %s", describe(n))
			return
		}
		for i, e := range n.Content {
			c.check(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			c.bad(path, n, "must be a string, not %s", describe(n))
			return
		}
		var s string
		if err := n.Decode(&s); err != nil {
			c.bad(path, n, "must be a string: %s", strings.TrimPrefix(err.Error(), "yaml: "))
		}
	case reflect.Int, reflect.Int64:
		v := reflect.New(t)
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(v.Interface()) != nil {
			c.bad(path, n, "must be a whole number, not %s", describe(n))
		}
	default: // no field of the api types has another kind yet; let yaml judge
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			c.bad(path, n, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
		}
	}
}

// mapping calls each for every key and value of the mapping n, after those
// it merges in with "<<" so that its own keys are seen last, as yaml applies
// them. A key given twice in one mapping is a problem, as it is to yaml.
func (c *checker) mapping(n *yaml.Node, path string, each func(key, val *yaml.Node)) {
	if c.budget--; c.budget < 0 {
		return // merges nest like aliases: each visit counts
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		if key.Kind != yaml.ScalarNode || key.ShortTag() != "!!merge" {
			continue
		}
		for _, m := range mergeSources(val) {
			if m.Kind != yaml.MappingNode {
				c.bad(path, val, "<< must merge a mapping, not %s", describe(m))
				continue
			}
			c.mapping(m, path, each)
		}
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		if key.Kind == yaml.ScalarNode && key.ShortTag() == "!!merge" {
			continue
		}
		if key.Kind == yaml.ScalarNode {
			if line, ok := seen[key.Value]; ok {
				c.bad(join(path, key.Value), key, "given twice, first on line %d", line)
				c.hidden[path] = true
				continue
			}
			seen[key.Value] = key.Line
		}
		each(key, val)
	}
}

// mergeSources returns the mappings a "<<" value merges: one mapping or alias,
// or a list of them.
func mergeSources(val *yaml.Node) []*yaml.Node {
	val = resolve(val)
	if val.Kind != yaml.SequenceNode {
		return []*yaml.Node{val}
	}
	out := make([]*yaml.Node, 0, len(val.Content))
	for _, e := range val.Content {
		out = append(out, resolve(e))
	}
	return out
}

// bad records a problem with the field at path, found at node n, and hides
// the field from later problems: yaml leaves it unset.
func (c *checker) bad(path string, n *yaml.Node, format string, args ...any) {
	c.badKey(path, n, format, args...)
	c.hidden[path] = true
}

// badKey records a problem with a key of the mapping at path, found at node
// n. yaml skips the key and decodes the rest of the mapping.
func (c *checker) badKey(path string, n *yaml.Node, format string, args ...any) {
	c.problems = append(c.problems, problem{
		field:   cmp.Or(path, "job file"), // "" is the document itself
		msg:     fmt.Sprintf(format, args...),
		line:    n.Line,
		isExact: true,
	})
}

// isExhausted reports whether the checker stopped early because aliases
// expanded past its budget.
func (c *checker) isExhausted() bool { return c.budget < 0 }

// isClean reports whether the checker has found no problem yet.
func (c *checker) isClean() bool { return len(c.problems) == 0 }

// add records a problem with the value of the field at path, found after
// decoding, unless the checker already found the field, or one around it,
// malformed: a list item that is not a job has no job key to complain of.
func (c *checker) add(path, msg string) {
	pr := problem{field: cmp.Or(path, "job file"), msg: msg}
	hasLine := false
	for p, isExact := path, true; ; isExact = false {
		if c.hidden[p] {
			return
		}
		if l, ok := c.lines[p]; ok && !hasLine {
			pr.line, pr.isExact, hasLine = l, isExact, true
		}
		if p == "" {
			break
		}
		p = p[:max(strings.LastIndexAny(p, ".["), 0)] // "" is the document
	}
	c.problems = append(c.problems, pr)
}

// err returns every problem found, in the order of the file, as an
// [errors.Join] of [*job.FieldError]; or nil if there are none.
func (c *checker) err() error {
	// Within a line, problems stay in the order found: the checker's first,
	// then each job's in the order of the list.
	slices.SortStableFunc(c.problems, func(a, b problem) int { return cmp.Compare(a.line, b.line) })
	errs := make([]error, len(c.problems))
	for i, p := range c.problems {
		msg := p.msg
		if p.isExact {
			msg += fmt.Sprintf(" (line %d)", p.line)
		}
		errs[i] = &job.FieldError{Field: p.field, Msg: msg}
	}
	return errors.Join(errs...)
}

// resolve follows n if it is an alias.
func resolve(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return n.Alias
	}
	return n
}

// yamlFields maps each yaml key of struct type t to its field.
func yamlFields(t reflect.Type) map[string]reflect.StructField {
	out := make(map[string]reflect.StructField, t.NumField())
	for _, f := range reflect.VisibleFields(t) {
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = strings.ToLower(f.Name) // yaml's default key
		}
		out[name] = f
	}
	return out
}

// join appends a field name to a path.
func join(path, name string) string {
	if !isPlainName(name) {
		name = strconv.Quote(name)
	}
	if path == "" {
		return name
	}
	return path + "." + name
}

// isPlainName reports whether name can stand unquoted in a field path.
func isPlainName(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// describe says in words what kind of value n holds, for error messages.
func describe(n *yaml.Node) string {
	n = resolve(n)
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	if r := []rune(n.Value); len(r) > 40 {
		return strconv.Quote(string(r[:37]) + "...")
	}
	return strconv.Quote(n.Value)
}

// suggest returns a hint naming the known field closest to an unknown one,
// or "" when none is close enough to be a likely typo.
func suggest(name string, fields map[string]reflect.StructField) string {
	best, bestDist := "", 0
	for known := range fields {
		// A typo is at most two edits, and fewer than half the word: "ab" is
		// not a typo of "job".
		d := editDistance(strings.ToLower(name), known)
		if d > 2 || 2*d >= len(known) {
			continue
		}
		if best == "" || d < bestDist || d == bestDist && known < best {
			best, bestDist = known, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(", did you mean %q?", best)
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	if len(a) > 64 {
		return len(a) // far too long to be a typo; skip the quadratic work
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
