package objectlock

import (
	"crypto/x509"
	"fmt"
	"net/url"
	"strconv"

	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
)

// The BackupStorageLocation config keys of Velero's AWS plugin that say
// where the bucket is and how to reach it.
const (
	configRegion                = "region"
	configS3URL                 = "s3Url"
	configS3ForcePathStyle      = "s3ForcePathStyle"
	configInsecureSkipTLSVerify = "insecureSkipTLSVerify"
)

// defaultRegion is the region of a location that names none.
const defaultRegion = "us-east-1"

// Target is the bucket of a BackupStorageLocation and how to reach it, as
// Velero's AWS plugin does.
type Target struct {
	// Location is the BackupStorageLocation's namespace/name, for messages.
	Location string
	// Bucket is the bucket backups are written to.
	Bucket string
	// Prefix is the path inside the bucket under which Velero writes, or
	// empty. Object Lock and versioning are set per bucket, so the check
	// reads the whole bucket's configuration.
	Prefix string
	// Endpoint is the store's URL without a path: the location's s3Url, or
	// https://s3.<region>.amazonaws.com.
	Endpoint string
	// Region is the location's region, us-east-1 when it names none.
	Region string
	// PathStyle addresses the bucket as a path of the endpoint
	// (s3ForcePathStyle) rather than as a host name.
	PathStyle bool
	// InsecureSkipTLSVerify accepts any certificate from an https endpoint.
	InsecureSkipTLSVerify bool
	// CACert is a PEM bundle of certificate authorities trusted for an https
	// endpoint, besides the system's.
	CACert []byte
}

// TargetOf returns the Target of a BackupStorageLocation of Velero's AWS
// plugin (provider aws), which also serves every S3-compatible store. Other
// providers are an error: only S3's versioning and Object Lock can be read.
func TargetOf(bsl *velerov1.BackupStorageLocation) (Target, error) {
	name := bsl.Namespace + "/" + bsl.Name
	storage, err := objectStorageOf(name, bsl.Spec)
	if err != nil {
		return Target{}, err
	}
	config := bsl.Spec.Config
	t := Target{
		Location: name,
		Bucket:   storage.Bucket,
		Prefix:   storage.Prefix,
		Region:   config[configRegion],
		CACert:   storage.CACert,
	}
	if t.Region == "" {
		t.Region = defaultRegion
	}
	if t.PathStyle, err = boolConfig(name, config, configS3ForcePathStyle); err != nil {
		return Target{}, err
	}
	if t.InsecureSkipTLSVerify, err = boolConfig(name, config, configInsecureSkipTLSVerify); err != nil {
		return Target{}, err
	}
	if t.Endpoint, err = endpointOf(name, config[configS3URL], t.Region); err != nil {
		return Target{}, err
	}
	if len(t.CACert) > 0 && !x509.NewCertPool().AppendCertsFromPEM(t.CACert) {
		return Target{}, fmt.Errorf("BackupStorageLocation %s: spec.objectStorage.caCert holds no PEM certificate", name)
	}
	return t, nil
}

// objectStorageOf returns the object storage of the location named name,
// an error when its provider is not the AWS plugin, it names no bucket or
// it takes its CA bundle from a Secret.
func objectStorageOf(name string, spec velerov1.BackupStorageLocationSpec) (*velerov1.ObjectStorageLocation, error) {
	if p := spec.Provider; p != "aws" && p != "velero.io/aws" {
		return nil, fmt.Errorf("BackupStorageLocation %s has provider %q: only the AWS/S3-compatible provider (aws) can be checked for immutability", name, p)
	}
	storage := spec.ObjectStorage
	if storage == nil || storage.Bucket == "" {
		return nil, fmt.Errorf("BackupStorageLocation %s names no bucket (spec.objectStorage.bucket)", name)
	}
	if storage.CACertRef != nil && len(storage.CACert) == 0 {
		return nil, fmt.Errorf("BackupStorageLocation %s takes its CA bundle from Secret key %s/%s (spec.objectStorage.caCertRef), which the immutability check does not read: give the bundle in spec.objectStorage.caCert",
			name, storage.CACertRef.Name, storage.CACertRef.Key)
	}
	return storage, nil
}

// endpointOf is the store's URL without a path for the location named
// name: its s3Url, which must be an http:// or https:// URL without a path,
// or AWS's endpoint for region when it gives none.
func endpointOf(name, s3URL, region string) (string, error) {
	if s3URL == "" {
		return "https://s3." + region + ".amazonaws.com", nil
	}
	u, err := url.Parse(s3URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("BackupStorageLocation %s: config %s %q is not an http:// or https:// URL", name, configS3URL, s3URL)
	}
	if u.Path != "" && u.Path != "/" {
		return "", fmt.Errorf("BackupStorageLocation %s: config %s %q has a path, which the immutability check cannot address: give the endpoint without one", name, configS3URL, s3URL)
	}
	return u.Scheme + "://" + u.Host, nil
}

// boolConfig reads a true/false config value as Velero's AWS plugin does
// (strconv.ParseBool); absent is false.
func boolConfig(location string, config map[string]string, key string) (bool, error) {
	v, ok := config[key]
	if !ok || v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("BackupStorageLocation %s: config %s %q is not true or false", location, key, v)
	}
	return b, nil
}
