package config

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"slices"
)

// maxTLSFileSize bounds how much of a referenced file goes into its
// digest: certificates and keys are a few KiB.
const maxTLSFileSize = 1 << 20

// Files returns the paths of the files the listener's settings reference:
// those of upstream-tls, tls and trusted-ca-file, without duplicates.
func (l Listener) Files() []string {
	var out []string
	for _, f := range []string{
		l.UpstreamTLS.CAFile, l.UpstreamTLS.CertFile, l.UpstreamTLS.KeyFile,
		l.TLS.CertFile, l.TLS.KeyFile, l.TLS.ClientCAFile,
		l.TrustedCAFile,
	} {
		if f != "" && !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

// Files returns the paths of the files every listener references; see
// Listener.Files.
func (s *Snapshot) Files() []string {
	var out []string
	for _, l := range s.Listeners {
		for _, f := range l.Files() {
			if !slices.Contains(out, f) {
				out = append(out, f)
			}
		}
	}
	return out
}

// WithFileDigests returns a copy of s in which each listener's
// FilesDigest is the digest of the content of the files it references
// (see Listener.Files) as they are now, so that comparing two snapshots
// sees a certificate renewed on disk under the same name. A file that
// can't be read is digested as its error: loading it is Apply's job, and
// its error names the listener and the key. s is not modified.
func WithFileDigests(s *Snapshot) *Snapshot {
	out := *s
	out.Listeners = slices.Clone(s.Listeners)
	for i := range out.Listeners {
		out.Listeners[i].FilesDigest = filesDigest(out.Listeners[i].Files())
	}
	return &out
}

// filesDigest is the hex SHA-256 of the paths and contents of files; ""
// when there are none.
func filesDigest(files []string) string {
	if len(files) == 0 {
		return ""
	}
	h := sha256.New()
	for _, f := range files {
		_, _ = io.WriteString(h, f)
		h.Write([]byte{0})
		data, err := readLimited(f)
		if err != nil {
			_, _ = io.WriteString(h, "error: "+err.Error())
		} else {
			h.Write(data)
		}
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// readLimited reads at most maxTLSFileSize bytes of the file at path.
func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxTLSFileSize))
}
