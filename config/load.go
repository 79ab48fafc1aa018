package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
)

// Load reads the configuration file at path once and returns its validated
// snapshot; see Parse. Unlike Parse, it also digests the files the
// listeners reference (see WithFileDigests). An unreadable or missing
// file, or a directory, is an error naming the path.
func Load(path string) (*Snapshot, error) {
	data, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := Parse(path, data)
	if err != nil {
		return nil, err
	}
	return WithFileDigests(s), nil
}

// MaxFileSize is the largest configuration file read. A real one is a few
// KiB; anything near this is a mistake, and is refused before it is parsed.
const MaxFileSize = 1 << 20

// ReadFile reads the configuration file at path whole. Its error names the
// file (a *fs.PathError inside). A file larger than MaxFileSize is an error.
func ReadFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read config file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read config file: %w", err) // a *fs.PathError naming path
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%s: config file is larger than %d KiB: is it the right file?", path, MaxFileSize>>10)
	}
	return data, nil
}

// Parse decodes and validates data, the content of the configuration file at
// path. The format comes from the extension of path: .yaml or .yml for YAML,
// .toml for TOML. Decoding is strict: unknown keys are errors. Parse never
// reads the file system.
//
// The error is a *SyntaxError when data is not valid YAML or TOML, a
// *ValidationError listing every problem when it parses but is not a valid
// configuration, and a plain error naming path otherwise (unsupported
// extension, empty file).
func Parse(path string, data []byte) (*Snapshot, error) {
	format, err := formatOf(path)
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("%s: file is empty", path)
	}
	// A fresh instance per parse: nothing is shared between parses, and
	// viper's global instance is never touched.
	v := viper.New()
	v.SetConfigType(format)
	if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
		return nil, newSyntaxError(path, format, data, err)
	}
	return decode(path, v)
}

// formatOf returns the viper config type for path's extension.
func formatOf(path string) (string, error) {
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".yaml", ".yml":
		return "yaml", nil
	case ".toml":
		return "toml", nil
	case "":
		return "", fmt.Errorf("%s: config file has no extension: name it *.yaml, *.yml or *.toml", path)
	default:
		return "", fmt.Errorf("%s: unsupported config file extension %q: use .yaml, .yml or .toml", path, ext)
	}
}

// SyntaxError reports a configuration file that is not valid YAML or TOML,
// or whose top level is not a mapping of keys.
type SyntaxError struct {
	// File is the path of the file.
	File string
	// Format is "yaml" or "toml".
	Format string
	// Line and Column locate the error, counting from 1; zero when the
	// parser did not say.
	Line, Column int
	// Msg is the parser's message, without its location.
	Msg string
	// Err is the parser's error.
	Err error
}

// Error returns "FILE: FORMAT syntax error at line L, column C: MSG".
func (e *SyntaxError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s syntax error", e.File, e.Format)
	if e.Line > 0 {
		fmt.Fprintf(&b, " at line %d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ", column %d", e.Column)
		}
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the parser's error.
func (e *SyntaxError) Unwrap() error { return e.Err }

// newSyntaxError turns an error of viper's ReadConfig reading data into a
// *SyntaxError, with the position the parser reported (corrected for
// yaml.v3's parser errors) and hints for mistakes the parser's message
// does not explain.
func newSyntaxError(path, format string, data []byte, err error) *SyntaxError {
	inner := err
	var cpe viper.ConfigParseError
	if errors.As(err, &cpe) && cpe.Unwrap() != nil {
		inner = cpe.Unwrap()
	}
	se := &SyntaxError{File: path, Format: format, Err: inner}

	var de *toml.DecodeError
	var te *yaml.TypeError
	switch {
	case errors.As(inner, &de):
		se.Line, se.Column = de.Position()
		se.Msg = strings.TrimPrefix(de.Error(), "toml: ")
	case errors.As(inner, &te):
		// The value decoded into is a map[string]any, so the only type
		// errors are a top level that is not a mapping, and duplicate keys.
		msgs := make([]string, 0, len(te.Errors))
		for i, m := range te.Errors {
			line, rest := cutYAMLLine(m)
			if i == 0 {
				se.Line = line
			}
			if strings.Contains(rest, "cannot unmarshal") && strings.Contains(rest, "into map[") {
				rest = "the top level must be a mapping of keys to values (key: value)"
			}
			if i > 0 && line > 0 {
				rest = fmt.Sprintf("line %d: %s", line, rest)
			}
			msgs = append(msgs, rest)
		}
		se.Msg = strings.Join(msgs, "; ")
	default:
		msg := inner.Error()
		msg = strings.TrimPrefix(msg, "yaml: ")
		msg = strings.TrimPrefix(msg, "toml: ")
		se.Line, se.Msg = cutYAMLLine(msg)
		if format == "yaml" {
			se.Line = yamlProblemLine(data, se.Line, se.Msg)
			se.Msg = strings.Join(append([]string{se.Msg}, yamlHints(data)...), "; ")
		}
	}
	if se.Msg == "" {
		se.Msg = inner.Error()
	}
	return se
}

// cutYAMLLine splits "line 3: message" into 3 and "message". Without that
// prefix it returns 0 and msg unchanged.
func cutYAMLLine(msg string) (int, string) {
	rest, ok := strings.CutPrefix(msg, "line ")
	if !ok {
		return 0, msg
	}
	num, tail, ok := strings.Cut(rest, ": ")
	if !ok {
		return 0, msg
	}
	n, err := strconv.Atoi(num)
	if err != nil || n <= 0 {
		return 0, msg
	}
	return n, tail
}

// ControlSocketOf returns the control-socket key of the file at path ("" when
// it has none), whatever else is wrong with the file: `etcd-gateway reload`
// calls the gateway even with a file the gateway will reject, to hear why.
// The error is the file's when it can't be read or parsed at all.
func ControlSocketOf(path string) (string, error) {
	data, err := ReadFile(path)
	if err != nil {
		return "", err
	}
	format, err := formatOf(path)
	if err != nil {
		return "", err
	}
	v := viper.New()
	v.SetConfigType(format)
	if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
		return "", newSyntaxError(path, format, data, err)
	}
	s, _ := v.Get(keyControlSocket).(string)
	return s, nil
}
