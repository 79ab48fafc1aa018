package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"syscall"
)

// Client makes calls on a control socket.
type Client struct {
	path string
	http *http.Client
}

// NewClient returns a client of the control socket at path.
func NewClient(path string) *Client {
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", path)
	}
	return &Client{path: path, http: &http.Client{Transport: &http.Transport{DialContext: dial}}}
}

// Call makes the call name with in and decodes the answer into out.
func (c *Client) Call(ctx context.Context, name string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://gateway"+callPath(name), bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return c.dialError(err)
	}
	defer resp.Body.Close()
	return decodeAnswer(resp, out)
}

// decodeAnswer decodes a 200 answer into out, and returns the message of
// any other as an error.
func decodeAnswer(resp *http.Response, out any) error {
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxRequest))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var f failure
		if json.Unmarshal(data, &f) == nil && f.Error != "" {
			return errors.New(f.Error)
		}
		return fmt.Errorf("the gateway answered %s", resp.Status)
	}
	return json.Unmarshal(data, out)
}

// dialError says what a failed call means for the operator.
func (c *Client) dialError(err error) error {
	switch {
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("control socket %s: permission denied: only root, the gateway's user and control-group may change the running gateway", c.path)
	case errors.Is(err, os.ErrNotExist), errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("no gateway answers on control socket %s: is it running, with this control-socket? (%w)", c.path, err)
	}
	return fmt.Errorf("control socket %s: %w", c.path, err)
}
