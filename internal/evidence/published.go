package evidence

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
)

// ConfigMapName is the ConfigMap, in phiguard's namespace, where the manager
// publishes where its evidence goes and the public keys that verify it, for
// `kubectl phiguard evidence` and for auditors.
const ConfigMapName = "phiguard-evidence"

// The keys of the published ConfigMap.
const (
	keyCluster    = "cluster"
	keySink       = "sink"
	keyDir        = "dir"
	keyEndpoint   = "s3Endpoint"
	keyBucket     = "s3Bucket"
	keyPrefix     = "s3Prefix"
	keyRegion     = "s3Region"
	keyPathStyle  = "s3PathStyle"
	keyPublicKeys = "publicKeys"
)

// Sink kinds, as the manager's --evidence-sink takes them.
const (
	SinkDir  = "dir"
	SinkS3   = "s3"
	SinkNone = "none"
)

// Published is what the manager publishes about its evidence trail.
type Published struct {
	// Cluster is the cluster's identity the records carry.
	Cluster string
	// Sink is SinkDir or SinkS3.
	Sink string
	// Dir is the directory, as the manager sees it (SinkDir).
	Dir string
	// S3 says where the bucket is (SinkS3); it holds no credentials.
	S3 S3Options
	// Keys verify the checkpoints: every key that ever signed, so that old
	// segments verify after a key rotation.
	Keys PublicKeys
}

// Data returns the ConfigMap's data.
func (p Published) Data() (map[string]string, error) {
	keys := make(map[string]string, len(p.Keys))
	for id, k := range p.Keys {
		keys[id] = base64.StdEncoding.EncodeToString(k)
	}
	raw, err := json.Marshal(keys)
	if err != nil {
		return nil, fmt.Errorf("encoding the evidence public keys: %w", err)
	}
	d := map[string]string{keyCluster: p.Cluster, keySink: p.Sink, keyPublicKeys: string(raw)}
	switch p.Sink {
	case SinkDir:
		d[keyDir] = p.Dir
	case SinkS3:
		d[keyEndpoint], d[keyBucket], d[keyPrefix], d[keyRegion] = p.S3.Endpoint, p.S3.Bucket, p.S3.Prefix, p.S3.Region
		d[keyPathStyle] = strconv.FormatBool(p.S3.PathStyle)
	}
	return d, nil
}

// ParsePublished reads the ConfigMap's data.
func ParsePublished(d map[string]string) (Published, error) {
	p := Published{Cluster: d[keyCluster], Sink: d[keySink], Dir: d[keyDir], Keys: PublicKeys{}}
	if p.Sink == SinkS3 {
		p.S3 = S3Options{Endpoint: d[keyEndpoint], Bucket: d[keyBucket], Prefix: d[keyPrefix], Region: d[keyRegion]}
		p.S3.PathStyle, _ = strconv.ParseBool(d[keyPathStyle])
	}
	var keys map[string]string
	if err := json.Unmarshal([]byte(d[keyPublicKeys]), &keys); err != nil {
		return p, fmt.Errorf("reading the published evidence keys: %w", err)
	}
	for id, k := range keys {
		raw, err := base64.StdEncoding.DecodeString(k)
		if err != nil || len(raw) != ed25519.PublicKeySize {
			return p, fmt.Errorf("published evidence key %s is not an Ed25519 public key", id)
		}
		if KeyIDOf(raw) != id {
			return p, fmt.Errorf("published evidence key %s does not match its id", id)
		}
		p.Keys[id] = raw
	}
	return p, nil
}
