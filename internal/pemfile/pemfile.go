// Package pemfile reads the PEM files the configuration names (CA bundles),
// so that every package that loads one says the same thing about a bad one.
package pemfile

import (
	"crypto/x509"
	"fmt"
	"os"
)

// CertPool reads a PEM file of CA certificates. A file without any
// certificate is an error naming it: an empty pool would make every
// verification fail with a less helpful message.
func CertPool(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s: no PEM certificate in the file", path)
	}
	return pool, nil
}
