package conf

import (
	"fmt"
	"os"
	"strings"
)

// ReadToken reads a credential from the file a config field names: the
// file's text without surrounding blanks, which must not be empty. Errors
// name the field and the file, never the credential.
func ReadToken(field, path string) (string, error) {
	if path == "" {
		return "", fmt.Errorf("%s is not set", field)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", field, err)
	}
	token := strings.TrimSpace(string(b))
	if token == "" {
		return "", fmt.Errorf("%s: %s is empty", field, path)
	}
	return token, nil
}
