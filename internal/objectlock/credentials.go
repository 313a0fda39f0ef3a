package objectlock

import (
	"crypto/sha256"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// The keys of the Secret named by a PHIPolicy's backup.locationCredentials.
const (
	// KeyAccessKeyID holds the access key ID (required).
	KeyAccessKeyID = "accessKeyID"
	// KeySecretAccessKey holds the secret access key (required).
	KeySecretAccessKey = "secretAccessKey"
	// KeySessionToken holds a session token for temporary credentials (optional).
	KeySessionToken = "sessionToken"
)

// Credentials sign the check's S3 requests. They need only
// s3:GetBucketVersioning and s3:GetBucketObjectLockConfiguration on the
// bucket (Permissions). Printing them with %v or %+v hides the secret parts.
type Credentials struct {
	// AccessKeyID is the access key ID.
	AccessKeyID string
	// SecretAccessKey is the secret access key.
	SecretAccessKey string
	// SessionToken is the session token of temporary credentials, or empty.
	SessionToken string
}

// CredentialsFromSecret reads Credentials from a Secret's keys accessKeyID,
// secretAccessKey and, optionally, sessionToken. Surrounding whitespace is
// dropped, such as the newline a Secret made from a file often ends with.
func CredentialsFromSecret(s *corev1.Secret) (Credentials, error) {
	if s == nil {
		return Credentials{}, fmt.Errorf("reading S3 credentials: no Secret")
	}
	value := func(key string, required bool) (string, error) {
		v := strings.TrimSpace(string(s.Data[key]))
		if v == "" && required {
			return "", fmt.Errorf("secret %s/%s has no key %q (or it is empty): put the S3 credentials in keys %s and %s, and optionally %s",
				s.Namespace, s.Name, key, KeyAccessKeyID, KeySecretAccessKey, KeySessionToken)
		}
		return v, nil
	}
	var c Credentials
	var err error
	if c.AccessKeyID, err = value(KeyAccessKeyID, true); err != nil {
		return Credentials{}, err
	}
	if c.SecretAccessKey, err = value(KeySecretAccessKey, true); err != nil {
		return Credentials{}, err
	}
	c.SessionToken, _ = value(KeySessionToken, false)
	return c, nil
}

// String implements fmt.Stringer without the secret parts.
func (c Credentials) String() string {
	return fmt.Sprintf("{AccessKeyID:%s SecretAccessKey:<hidden> SessionToken:%s}", c.AccessKeyID, hidden(c.SessionToken))
}

// GoString implements fmt.GoStringer without the secret parts.
func (c Credentials) GoString() string {
	return fmt.Sprintf("objectlock.Credentials{AccessKeyID:%q, SecretAccessKey:<hidden>, SessionToken:%s}", c.AccessKeyID, hidden(c.SessionToken))
}

func hidden(s string) string {
	if s == "" {
		return `""`
	}
	return "<hidden>"
}

// fingerprint identifies the credentials in the Checker's cache without
// keeping them in its keys.
func (c Credentials) fingerprint() string {
	sum := sha256.Sum256([]byte(c.AccessKeyID + "\x00" + c.SecretAccessKey + "\x00" + c.SessionToken))
	return fmt.Sprintf("%x", sum[:16])
}
