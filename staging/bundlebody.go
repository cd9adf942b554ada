package staging

import "io"

// bundleBody is the stream Verify reads: it hands out the bundle's bytes
// and gives the whole bundle's SHA-256 once drained.
type bundleBody interface {
	io.Reader
	// Sum reads what is left and returns the hex SHA-256 of all of it.
	Sum() (string, error)
}

// knownSum is a stream that knows its own SHA-256 (a split bundle's
// reader, see VerifyOptions.BundleSHA256): nothing is hashed here.
type knownSum struct {
	r  io.Reader
	of func() (string, error) // the stream's own sum, once drained
}

func (k *knownSum) Read(p []byte) (int, error) { return k.r.Read(p) }

// Sum drains the stream and asks it for its sum.
func (k *knownSum) Sum() (string, error) {
	if _, err := io.Copy(io.Discard, k.r); err != nil {
		return "", err
	}
	return k.of()
}
