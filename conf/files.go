package conf

import (
	"crypto/tls"
	"errors"
	"io/fs"
	"net"
	"os"
	"strconv"
)

// address checks a host:port setting: both parts there and the port a
// number from 1 to 65535 (or 0 for a listener: any free port). what says
// what the address is for, as in "is not host:port of <what>".
func (c *checker) address(path, value, what string, listen bool) bool {
	host, port, err := net.SplitHostPort(value)
	if err != nil {
		c.errorf(path, "%q is not host:port of %s", value, what)
		return false
	}
	n, err := strconv.Atoi(port)
	lowest := 1
	if listen {
		lowest = 0
	}
	switch {
	case err != nil:
		if _, lerr := net.LookupPort("tcp", port); lerr != nil {
			c.errorf(path, "%q: the port %q is not a number", value, port)
			return false
		}
	case n < lowest || n > 65535:
		c.errorf(path, "%q: the port %d is out of range (%d to 65535)", value, n, lowest)
		return false
	}
	if !listen && host == "" {
		c.errorf(path, "%q: the host is missing", value)
		return false
	}
	return true
}

// readable checks that a file the config names can be read now, as the
// daemon will read it at start; hint says how to make a missing one.
func (c *checker) readable(path, file, hint string) bool {
	if !c.files || file == "" {
		return true
	}
	st, err := os.Stat(file)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		c.errorf(path, "%q: no such file%s", file, hint)
		return false
	case errors.Is(err, fs.ErrPermission):
		c.errorf(path, "%q: this user (uid %d) may not look in its directory", file, os.Getuid())
		return false
	case err != nil:
		c.errorf(path, "%q: %v", file, unwrapPath(err))
		return false
	case st.IsDir():
		c.errorf(path, "%q is a directory, not a file", file)
		return false
	}
	f, err := os.Open(file)
	if err != nil {
		c.errorf(path, "%q cannot be read by this user (uid %d)", file, os.Getuid())
		return false
	}
	f.Close()
	return true
}

// tokenHint says how to make missing tokens.
const tokenHint = " (immune coordinator init DIR makes fresh tokens; copy them to the agents with immune agent init --tokens-from)"

// token checks a file holding a credential: readable and not empty.
func (c *checker) token(path, file string) {
	if !c.files || file == "" || !c.readable(path, file, tokenHint) {
		return
	}
	if _, err := ReadToken(displayPath(path), file); err != nil {
		c.errorf(path, "%q is empty: it must hold the token", file)
	}
}

// keyPair checks a certificate and its key, given in section.cert_file
// and section.key_file.
func (c *checker) keyPair(section, cert, key string) {
	if !c.files || cert == "" || key == "" {
		return
	}
	if !c.readable(section+".cert_file", cert, "") || !c.readable(section+".key_file", key, "") {
		return
	}
	if _, err := tls.LoadX509KeyPair(cert, key); err != nil {
		c.errorf(section+".cert_file", "%q with key %q: not a certificate and its private key in PEM: %v", cert, key, err)
	}
}

// caFile checks a file of PEM certificates.
func (c *checker) caFile(path, file string) {
	if !c.files || file == "" || !c.readable(path, file, "") {
		return
	}
	if _, err := CertPool(file); errors.Is(err, errNoPEM) {
		c.errorf(path, "%q holds no PEM certificate", file)
	}
}

// executable checks a program the config runs: a file with an execute bit.
func (c *checker) executable(path, file string) {
	if !c.files || file == "" {
		return
	}
	st, err := os.Stat(file)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		c.errorf(path, "%q: no such program", file)
	case err != nil:
		c.errorf(path, "%q: %v", file, unwrapPath(err))
	case st.IsDir():
		c.errorf(path, "%q is a directory, not a program", file)
	case st.Mode().Perm()&0o111 == 0:
		c.errorf(path, "%q is not executable (chmod +x)", file)
	}
}

// unwrapPath drops the "stat FILE:" the message would repeat.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// directoryOK checks that a directory the daemon creates can be: it is a
// directory when it exists. Whether it can be written is found at start.
func (c *checker) directoryOK(path, dir string) {
	if !c.files || dir == "" {
		return
	}
	if st, err := os.Stat(dir); err == nil && !st.IsDir() {
		c.errorf(path, "%q is a file, not a directory", dir)
	}
}
