package jobspec

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// yamlJSON rewrites a valid JSON document so that yaml reads it exactly as a
// JSON decoder would. YAML 1.2 is a superset of JSON, but yaml.v3 reads YAML
// 1.1 and differs in every string: it rejects the escape \/ (PHP writes it),
// and surrogate pairs like \ud83d\ude00 (Python writes an emoji so); it
// rejects raw DEL, C1 controls and U+FFFE/U+FFFF; and it folds raw U+0085,
// U+2028 and U+2029 as line breaks, eating the spaces around them. It also
// refuses a tab before the first "{", which JSON allows.
//
// So each string is decoded as JSON and written again with only escapes
// yaml reads the same way, and tabs outside strings become spaces. Nothing
// else changes, so errors keep their line numbers.
func yamlJSON(data []byte) []byte {
	out := make([]byte, 0, len(data)+len(data)/8)
	for i := 0; i < len(data); i++ {
		switch c := data[i]; c {
		case '\t':
			out = append(out, ' ')
		case '"':
			j := i + 1
			for data[j] != '"' { // the document is valid, so the string ends
				if data[j] == '\\' {
					j++
				}
				j++
			}
			var s string
			if err := json.Unmarshal(data[i:j+1], &s); err != nil {
				return data // not valid JSON after all; let yaml say what is wrong
			}
			out = appendYAMLString(out, s)
			i = j
		default:
			out = append(out, c)
		}
	}
	return out
}

// appendYAMLString appends s as a YAML double-quoted string, escaping every
// character yaml would not read back as itself.
func appendYAMLString(out []byte, s string) []byte {
	out = append(out, '"')
	for _, r := range s { // json.Unmarshal leaves only valid UTF-8
		switch {
		case r == '"' || r == '\\':
			out = append(out, '\\', byte(r))
		case r >= 0x20 && r < 0x7f,
			r >= 0xa0 && r != 0x2028 && r != 0x2029 && r != 0xfeff && r != 0xfffe && r != 0xffff:
			out = utf8.AppendRune(out, r)
		default: // all in the Basic Multilingual Plane
			out = fmt.Appendf(out, `\u%04X`, r)
		}
	}
	return append(out, '"')
}
