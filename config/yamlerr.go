package config

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxLineSearch bounds how many lines past the line yaml.v3 reports
// yamlProblemLine tries, each a parse of the file up to that line.
const maxLineSearch = 200

// yamlParserProblems are the messages of yaml.v3's parser errors
// (parserc.go). For these, yaml.v3 reports the line of the error's mark
// counting from 0 (its scanner errors count from 1), and the mark is where
// the enclosing collection starts when there is one, not the problem.
func yamlParserProblems() []string {
	return []string{
		"did not find expected <stream-start>",
		"did not find expected <document start>",
		"found undefined tag handle",
		"did not find expected node content",
		"did not find expected '-' indicator",
		"did not find expected key",
		"did not find expected ',' or ']'",
		"did not find expected ',' or '}'",
		"found duplicate %YAML directive",
		"found incompatible YAML document",
		"found duplicate %TAG directive",
	}
}

// yamlProblemLine returns the line, counting from 1, of the YAML syntax
// error msg that yaml.v3 reported at line reported (0 when it gave none).
// A scanner error's line is right as it is. A parser error is at or after
// the line below the reported one: it is the first line at which the file,
// cut after that line, fails with the same message. data is not empty.
func yamlProblemLine(data []byte, reported int, msg string) int {
	if !slices.Contains(yamlParserProblems(), msg) {
		return reported
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	if len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	// An error at the end of the file is marked on the line after the last.
	first := max(1, min(reported+1, len(lines)))
	for n := first; n <= len(lines) && n < first+maxLineSearch; n++ {
		if yamlErrorMsg(bytes.Join(lines[:n], nil)) == msg {
			return n
		}
	}
	return first
}

// yamlErrorMsg returns the message, without its line, of the syntax error
// of data, or "" when data parses.
func yamlErrorMsg(data []byte) string {
	var v any
	err := yaml.Unmarshal(data, &v)
	if err == nil {
		return ""
	}
	_, msg := cutYAMLLine(strings.TrimPrefix(err.Error(), "yaml: "))
	return msg
}

// yamlHints explains the YAML mistakes behind a syntax error that the
// parser's message does not: an unquoted IPv6 address in brackets, which
// YAML reads as the start of a list.
func yamlHints(data []byte) []string {
	ipv6 := regexp.MustCompile(`^(\s*(?:-\s+)?(?:[A-Za-z0-9_.-]+:\s+)?)(\[[0-9A-Fa-f:.%]*\]:[0-9]+)\s*(?:#.*)?$`)
	var hints []string
	for i, line := range strings.Split(string(data), "\n") {
		m := ipv6.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		hints = append(hints, fmt.Sprintf("line %d: YAML reads %s as a list: quote it: %s%q",
			i+1, m[2], strings.TrimSpace(m[1])+" ", m[2]))
	}
	return hints
}
